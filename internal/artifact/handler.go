package artifact

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/activitybi/activitybi/internal/warehouse"
)

const (
	// cacheMaxAge caps how long a browser may keep an artifact without
	// asking again (never past its expiry): a deleted artifact stops being
	// shown within this long.
	cacheMaxAge = time.Hour

	// contentSecurityPolicy is sent with every artifact: nothing it
	// contains may run or load anything, so an SVG or HTML artifact opened
	// directly is an inert document, never a script on the core's origin.
	contentSecurityPolicy = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
)

// inlineTypes are the media types a browser may show in place; every other
// type is sent as an attachment (downloaded, not rendered).
var inlineTypes = map[string]bool{
	"image/png": true, "image/jpeg": true, "image/gif": true, "image/webp": true, "image/svg+xml": true,
}

// extensions name a download that has no Name: <id><ext>. A fixed table,
// not the system's mime.types, so the name is the same on every machine.
var extensions = map[string]string{
	"text/csv": ".csv", "application/json": ".json", "application/x-ndjson": ".ndjson",
	"text/plain": ".txt", "text/markdown": ".md", "text/html": ".html",
	"application/vnd.apache.parquet": ".parquet", "application/pdf": ".pdf",
}

// Handler serves GET and HEAD /artifacts/{id} to the artifact's owner. The
// customer comes from customerOf (the request's bearer token, the
// dashboard's session), never from the request's path or query; when it
// fails, the answer is 401 with its error. Another customer's id, like a
// missing, expired or malformed one, is 404 with the same body. Mount it
// where the full path /artifacts/{id} reaches it (no StripPrefix).
//
// Responses carry Content-Type, Content-Length, ETag (the content's
// SHA-256), Cache-Control private, X-Content-Type-Options nosniff, a
// Content-Security-Policy that lets nothing run, and, for anything but an
// image, Content-Disposition attachment. Conditional requests (If-None-
// Match) and byte ranges are answered by http.ServeContent; HEAD and a 304
// never read the blob, and a range reads only from its start.
func (s *Store) Handler(customerOf func(*http.Request) (string, error)) http.Handler {
	mux := http.NewServeMux()
	// A GET pattern matches HEAD too.
	mux.HandleFunc("GET /artifacts/{id}", func(w http.ResponseWriter, r *http.Request) {
		s.serve(w, r, customerOf)
	})
	return mux
}

func (s *Store) serve(w http.ResponseWriter, r *http.Request, customerOf func(*http.Request) (string, error)) {
	customer, err := customerOf(r)
	if err != nil {
		w.Header().Set("WWW-Authenticate", "Bearer")
		writeError(w, http.StatusUnauthorized, err.Error())
		return
	}
	id := r.PathValue("id")
	var meta *Meta
	var content io.ReadSeekCloser
	if r.Method == http.MethodHead || r.Header.Get("Range") != "" || r.Header.Get("If-None-Match") != "" {
		// The answer may need no bytes (HEAD, 304) or only some (a
		// range): open the blob only when ServeContent reads, and then
		// from where it reads.
		var row *warehouse.ArtifactRow
		row, err = s.lookup(r.Context(), customer, id)
		s.countGet(err)
		if err == nil {
			meta, content = metaOf(row), &lazyBlob{s: s, ctx: r.Context(), key: row.Key, size: row.Size}
		}
	} else {
		// A plain GET opens the blob before answering, so that a row
		// whose blob is gone is a clean 404, not a cut-off 200.
		var row *warehouse.ArtifactRow
		var rd *blob.Reader
		row, rd, err = s.open(r.Context(), customer, id)
		if err == nil {
			meta, content = metaOf(row), rd
		}
	}
	if err != nil {
		s.writeLookupError(w, err)
		return
	}
	// For several ranges ServeContent reads in a goroutine of its own,
	// which may still be in a Read when the response fails and this
	// returns: the content is closed under the same lock.
	guard := &guarded{rs: content}
	defer guard.Close()
	h := w.Header()
	h.Set("Content-Type", meta.ContentType)
	h.Set("ETag", `"`+meta.SHA256+`"`)
	h.Set("Cache-Control", "private, max-age="+strconv.Itoa(maxAge(meta.ExpiresAt, s.opts.Now())))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	if d := disposition(meta); d != "" {
		h.Set("Content-Disposition", d)
	}
	http.ServeContent(w, r, "", time.Time{}, guard)
}

func (s *Store) writeLookupError(w http.ResponseWriter, err error) {
	if errors.Is(err, ErrNotFound) {
		writeError(w, http.StatusNotFound, ErrNotFound.Error())
		return
	}
	s.log.Error("artifact: serve", "err", err)
	writeError(w, http.StatusInternalServerError, "the artifact store failed; try again later")
}

// maxAge is how many seconds a browser may keep an artifact expiring at
// expires: until then, at most cacheMaxAge.
func maxAge(expires, now time.Time) int {
	d := min(expires.Sub(now), cacheMaxAge)
	if d < 0 {
		return 0
	}
	return int(d / time.Second)
}

// disposition is the Content-Disposition of an artifact: "" for an image
// (shown in place), else an attachment named by Name, or by the id and an
// extension for the type.
func disposition(m *Meta) string {
	mt, _, _ := mime.ParseMediaType(m.ContentType)
	if inlineTypes[mt] {
		return ""
	}
	name := m.Name
	if name == "" {
		name = m.ID + extensions[mt]
	}
	// FormatMediaType quotes the name, or encodes it per RFC 2231 when it
	// is not plain ASCII; it returns "" for what it cannot encode, and the
	// download then goes without a suggested name.
	if d := mime.FormatMediaType("attachment", map[string]string{"filename": name}); d != "" {
		return d
	}
	return "attachment"
}

// lazyBlob is an artifact's content that opens the blob only when read,
// at the offset last sought, so that http.ServeContent answers HEAD, 304
// and ranges from the row's size without reading bytes it does not send.
type lazyBlob struct {
	s         *Store
	ctx       context.Context
	key       string
	size, off int64
	r         *blob.Reader // open at off, or nil
}

func (z *lazyBlob) Seek(offset int64, whence int) (int64, error) {
	off := z.off
	switch whence {
	case io.SeekStart:
		off = offset
	case io.SeekCurrent:
		off += offset
	case io.SeekEnd:
		off = z.size + offset
	}
	if off < 0 || off > z.size {
		return z.off, fmt.Errorf("seek to %d outside 0..%d", off, z.size)
	}
	if off != z.off && z.r != nil {
		_ = z.r.Close()
		z.r = nil
	}
	z.off = off
	return off, nil
}

func (z *lazyBlob) Read(p []byte) (int, error) {
	if z.off >= z.size {
		return 0, io.EOF
	}
	if z.r == nil {
		r, err := z.s.bucket.NewRangeReader(z.ctx, z.key, z.off, z.size-z.off, nil)
		if err != nil {
			// Headers are sent by now: the response is cut short.
			if gcerrors.Code(err) == gcerrors.NotFound {
				z.s.m.missingBlobs.Inc()
			}
			z.s.log.Warn("artifact: read for a response already under way", "key", z.key, "err", err)
			return 0, err
		}
		z.r = r
	}
	n, err := z.r.Read(p)
	z.off += int64(n)
	return n, err
}

func (z *lazyBlob) Close() error {
	if z.r == nil {
		return nil
	}
	return z.r.Close()
}

// guarded serializes Read, Seek and Close of a response's content.
type guarded struct {
	mu     sync.Mutex
	rs     io.ReadSeekCloser
	closed bool
}

func (g *guarded) Read(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return 0, os.ErrClosed
	}
	return g.rs.Read(p)
}

func (g *guarded) Seek(offset int64, whence int) (int64, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return 0, os.ErrClosed
	}
	return g.rs.Seek(offset, whence)
}

func (g *guarded) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil
	}
	g.closed = true
	return g.rs.Close()
}

func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": strings.TrimSpace(msg)})
}
