package artifact

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"gocloud.dev/blob"

	"github.com/activitybi/activitybi/internal/warehouse"
)

func mustPut(t testing.TB, s *Store, customer string, m Meta, body []byte) *Meta {
	t.Helper()
	got, err := s.Put(context.Background(), customer, m, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	return got
}

func readAll(t testing.TB, s *Store, customer, id string) (*Meta, []byte, error) {
	t.Helper()
	m, r, err := s.Get(context.Background(), customer, id)
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return m, b, nil
}

// files lists every regular file under dir, relative to it.
func files(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return out
}

func TestPutGet(t *testing.T) {
	t.Parallel()
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			s, b := setup(t, Options{URL: be.url})
			body := testPNG(t, 2000)
			m := mustPut(t, s, "alice", Meta{ContentType: "image/png", Kind: "card_png", Name: "usage.png"}, body)

			sum := sha256.Sum256(body)
			now := b.clock.Now()
			want := Meta{ID: m.ID, Customer: "alice", ContentType: "image/png", Name: "usage.png",
				Size: int64(len(body)), SHA256: hex.EncodeToString(sum[:]), CreatedAt: now,
				ExpiresAt: now.Add(DefaultTTL), Kind: "card_png"}
			if *m != want {
				t.Fatalf("Put returned\n%+v\nwant\n%+v", *m, want)
			}
			if !ValidID(m.ID) {
				t.Fatalf("id %q is not valid", m.ID)
			}
			got, data, err := readAll(t, s, "alice", m.ID)
			if err != nil {
				t.Fatal(err)
			}
			if *got != want || !bytes.Equal(data, body) {
				t.Fatalf("Get = %+v (%d bytes), want %+v (%d bytes)", *got, len(data), want, len(body))
			}
			st, err := s.Stat(context.Background(), "alice", m.ID)
			if err != nil || *st != want {
				t.Fatalf("Stat = %+v, %v", st, err)
			}

			// The row in the warehouse, read as the customer.
			tb, err := b.db.CustomerQuery(context.Background(), "alice",
				`SELECT url, size_bytes, content_type, kind, name, sha256, expires_at FROM artifacts WHERE artifact_id = ?`, []any{m.ID}, 10)
			if err != nil {
				t.Fatal(err)
			}
			wantRow := []any{customerDir("alice") + "/" + m.ID, int64(len(body)), "image/png", "card_png", "usage.png", want.SHA256, want.ExpiresAt}
			if len(tb.Rows) != 1 || fmt.Sprint(tb.Rows[0]) != fmt.Sprint(wantRow) {
				t.Fatalf("row = %v, want %v", tb.Rows, wantRow)
			}

			// An empty body is an artifact too.
			e := mustPut(t, s, "alice", Meta{ContentType: "text/csv", Kind: "query_result"}, nil)
			if _, data, err := readAll(t, s, "alice", e.ID); err != nil || len(data) != 0 || e.Size != 0 {
				t.Fatalf("empty artifact: %d bytes, %v", len(data), err)
			}
		})
	}
}

func TestFolderLayoutAndPermissions(t *testing.T) {
	t.Parallel()
	s, b := setup(t, Options{})
	m := mustPut(t, s, "alice@example.com", Meta{ContentType: "image/svg+xml", Kind: "card_svg", Name: "chart.svg"}, []byte("<svg/>"))
	root := filepath.Join(b.dataDir, "artifacts")
	got := files(t, root)
	want := []string{customerDir("alice@example.com") + "/" + m.ID}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("files = %v, want %v (no sidecars, no temporary files)", got, want)
	}
	if strings.Contains(strings.Join(got, ""), "alice") {
		t.Fatalf("the customer's name is in a key: %v", got)
	}
	for p, mode := range map[string]os.FileMode{
		root: dirMode, filepath.Join(root, customerDir("alice@example.com")): dirMode,
		filepath.Join(root, filepath.FromSlash(want[0])): fileMode,
	} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode().Perm(), os.FileMode(mode))
		}
	}
}

func TestIsolation(t *testing.T) {
	t.Parallel()
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			s, _ := setup(t, Options{URL: be.url})
			ctx := context.Background()
			a := mustPut(t, s, "alice", Meta{ContentType: "text/csv", Kind: "query_result"}, []byte("x,y\n1,2\n"))
			for _, c := range []string{"bob", "Alice", "alice\x00", ""} {
				if _, _, err := s.Get(ctx, c, a.ID); !errors.Is(err, ErrNotFound) {
					t.Errorf("Get as %q: %v, want ErrNotFound", c, err)
				}
				if _, err := s.Stat(ctx, c, a.ID); !errors.Is(err, ErrNotFound) {
					t.Errorf("Stat as %q: %v, want ErrNotFound", c, err)
				}
				if err := s.Delete(ctx, c, a.ID); !errors.Is(err, ErrNotFound) {
					t.Errorf("Delete as %q: %v, want ErrNotFound", c, err)
				}
			}
			// Bob's attempts changed nothing.
			if _, data, err := readAll(t, s, "alice", a.ID); err != nil || string(data) != "x,y\n1,2\n" {
				t.Fatalf("alice after bob's attempts: %q, %v", data, err)
			}
			// Malformed and unknown ids are not found either.
			for _, id := range []string{"", "x", strings.ToUpper(a.ID), a.ID + "0", a.ID[:IDLen-1] + "/", "../" + a.ID[3:], strings.Repeat("0", IDLen)} {
				if _, _, err := s.Get(ctx, "alice", id); !errors.Is(err, ErrNotFound) {
					t.Errorf("Get(%q): %v, want ErrNotFound", id, err)
				}
			}
			if err := s.Delete(ctx, "alice", a.ID); err != nil {
				t.Fatal(err)
			}
			if _, _, err := s.Get(ctx, "alice", a.ID); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Get after Delete: %v", err)
			}
			if err := s.Delete(ctx, "alice", a.ID); !errors.Is(err, ErrNotFound) {
				t.Fatalf("second Delete: %v", err)
			}
		})
	}
}

func TestExpiry(t *testing.T) {
	t.Parallel()
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			s, b := setup(t, Options{URL: be.url, DefaultTTL: time.Hour})
			ctx := context.Background()
			short := mustPut(t, s, "alice", Meta{ContentType: "image/png", Kind: "card_png"}, []byte("short"))
			long := mustPut(t, s, "bob", Meta{ContentType: "image/png", Kind: "card_png", ExpiresAt: b.clock.Now().Add(3 * time.Hour)}, []byte("long"))
			if want := b.clock.Now().Add(time.Hour); !short.ExpiresAt.Equal(want) {
				t.Fatalf("default expiry %s, want %s", short.ExpiresAt, want)
			}
			if n, err := s.Sweep(ctx); err != nil || n != 0 {
				t.Fatalf("Sweep before expiry = %d, %v", n, err)
			}

			b.clock.Advance(time.Hour)
			// Expired is not served, even before the sweep.
			if _, _, err := s.Get(ctx, "alice", short.ID); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Get of an expired artifact: %v", err)
			}
			if n, err := s.Sweep(ctx); err != nil || n != 1 {
				t.Fatalf("Sweep = %d, %v; want 1", n, err)
			}
			// The row is gone...
			if row, err := b.db.GetArtifact(ctx, "alice", short.ID); err != nil || row != nil {
				t.Fatalf("row after sweep: %+v, %v", row, err)
			}
			// ...and so is the blob.
			if ok, err := s.bucket.Exists(ctx, blobKey("alice", short.ID)); err != nil || ok {
				t.Fatalf("blob after sweep: exists=%v, %v", ok, err)
			}
			if be.url == "" {
				if got := files(t, filepath.Join(b.dataDir, "artifacts")); len(got) != 1 || !strings.HasSuffix(got[0], long.ID) {
					t.Fatalf("files after sweep: %v, want only %s", got, long.ID)
				}
			}
			// The other one lives on until its own expiry.
			if _, data, err := readAll(t, s, "bob", long.ID); err != nil || string(data) != "long" {
				t.Fatalf("unexpired artifact: %q, %v", data, err)
			}
			b.clock.Advance(2 * time.Hour)
			if n, err := s.Sweep(ctx); err != nil || n != 1 {
				t.Fatalf("second Sweep = %d, %v; want 1", n, err)
			}
			if rows, _ := b.db.ExpiredArtifacts(ctx, b.clock.Now().Add(MaxTTL), 10); len(rows) != 0 {
				t.Fatalf("rows left: %+v", rows)
			}
			if got := testutil.ToFloat64(s.m.swept); got != 2 {
				t.Fatalf("activitybi_artifact_swept_total = %v, want 2", got)
			}
		})
	}
}

func TestSweepManyRounds(t *testing.T) {
	t.Parallel()
	s, b := setup(t, Options{URL: "mem://", DefaultTTL: time.Minute})
	s.sweepBatch = 2 // so that a few artifacts take many Index reads
	n := s.sweepBatch*maxSweepRounds + 3
	for i := range n {
		mustPut(t, s, fmt.Sprint("c", i%3), Meta{ContentType: "text/plain", Kind: "note"}, []byte{byte(i)})
	}
	b.clock.Advance(time.Minute)
	// The first sweep stops at its limit, and says so in a metric.
	if got, err := s.Sweep(context.Background()); err != nil || got != s.sweepBatch*maxSweepRounds {
		t.Fatalf("Sweep = %d, %v; want %d", got, err, s.sweepBatch*maxSweepRounds)
	}
	if got := testutil.ToFloat64(s.m.sweepTruncated); got != 1 {
		t.Fatalf("truncated sweeps counted %v, want 1", got)
	}
	if got, err := s.Sweep(context.Background()); err != nil || got != 3 {
		t.Fatalf("second Sweep = %d, %v; want 3", got, err)
	}
	if rows, _ := b.db.ExpiredArtifacts(context.Background(), b.clock.Now().Add(MaxTTL), 10); len(rows) != 0 {
		t.Fatalf("rows left: %d", len(rows))
	}
	if keys := listKeys(t, s); len(keys) != 0 {
		t.Fatalf("blobs left: %d", len(keys))
	}
}

func TestSizeLimit(t *testing.T) {
	t.Parallel()
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			const limit = 10_000
			s, b := setup(t, Options{URL: be.url, MaxSize: limit})
			ctx := context.Background()
			m := mustPut(t, s, "alice", Meta{ContentType: "text/csv", Kind: "query_result"}, bytes.Repeat([]byte("a"), limit))
			if m.Size != limit {
				t.Fatalf("size %d", m.Size)
			}
			// One byte more is refused while streaming: the reader is
			// never read past limit+1 bytes.
			body := &countingReader{r: bytes.NewReader(bytes.Repeat([]byte("b"), 10*limit))}
			_, err := s.Put(ctx, "alice", Meta{ContentType: "text/csv", Kind: "query_result"}, body)
			if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "10000 bytes") {
				t.Fatalf("Put over the limit: %v", err)
			}
			if body.n > limit+1 {
				t.Fatalf("read %d bytes of the body, want at most %d", body.n, limit+1)
			}
			// Nothing of it is left: one row, one blob (the first Put's).
			rows, err := b.db.ExpiredArtifacts(ctx, b.clock.Now().Add(MaxTTL), 10)
			if err != nil || len(rows) != 1 || rows[0].ID != m.ID {
				t.Fatalf("rows after the refused put: %+v, %v", rows, err)
			}
			keys := listKeys(t, s)
			if len(keys) != 1 || keys[0] != blobKey("alice", m.ID) {
				t.Fatalf("blobs after the refused put: %v", keys)
			}
			if be.url == "" {
				if got := files(t, filepath.Join(b.dataDir, "artifacts")); len(got) != 1 {
					t.Fatalf("files after the refused put: %v", got)
				}
			}
			if got := testutil.ToFloat64(s.m.puts.WithLabelValues("too_large")); got != 1 {
				t.Fatalf("too_large puts counted %v, want 1", got)
			}
		})
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func listKeys(t testing.TB, s *Store) []string {
	t.Helper()
	var keys []string
	it := s.bucket.List(nil)
	for {
		o, err := it.Next(context.Background())
		if err == io.EOF {
			return keys
		}
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, o.Key)
	}
}

// failingReader gives n bytes, then fails.
type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n == 0 {
		return 0, errors.New("the client went away")
	}
	k := min(len(p), f.n)
	f.n -= k
	return k, nil
}

func TestFailedBodyLeavesNothing(t *testing.T) {
	t.Parallel()
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			s, b := setup(t, Options{URL: be.url})
			_, err := s.Put(context.Background(), "alice", Meta{ContentType: "text/csv", Kind: "query_result"}, &failingReader{n: 5000})
			if err == nil || !strings.Contains(err.Error(), "the client went away") {
				t.Fatalf("Put with a failing body: %v", err)
			}
			if rows, _ := b.db.ExpiredArtifacts(context.Background(), b.clock.Now().Add(MaxTTL), 10); len(rows) != 0 {
				t.Fatalf("rows left: %+v", rows)
			}
			if keys := listKeys(t, s); len(keys) != 0 {
				t.Fatalf("blobs left: %v", keys)
			}
			if be.url == "" {
				if got := files(t, filepath.Join(b.dataDir, "artifacts")); len(got) != 0 {
					t.Fatalf("files left: %v", got)
				}
			}
			if got := testutil.ToFloat64(s.m.puts.WithLabelValues("error")); got != 1 {
				t.Fatalf("error puts counted %v, want 1", got)
			}
		})
	}
}

// pendingProbe is a body that, when first read, records what a reader of
// the store sees while the Put is under way.
type pendingProbe struct {
	s      *Store
	b      *bundle
	body   io.Reader
	once   sync.Once
	row    *warehouse.ArtifactRow
	getErr error
}

func (p *pendingProbe) Read(buf []byte) (int, error) {
	p.once.Do(func() {
		rows, _ := p.b.db.ExpiredArtifacts(context.Background(), p.b.clock.Now().Add(MaxTTL), 10)
		if len(rows) == 1 {
			p.row = &rows[0]
			_, _, p.getErr = p.s.Get(context.Background(), p.row.Customer, p.row.ID)
		}
	})
	return p.body.Read(buf)
}

func TestPendingRowDuringPut(t *testing.T) {
	t.Parallel()
	s, b := setup(t, Options{URL: "mem://"})
	probe := &pendingProbe{s: s, b: b, body: strings.NewReader("a,b\n")}
	m, err := s.Put(context.Background(), "alice", Meta{ContentType: "text/csv", Kind: "query_result"}, probe)
	if err != nil {
		t.Fatal(err)
	}
	if probe.row == nil || probe.row.ID != m.ID {
		t.Fatalf("no pending row while the body was read: %+v", probe.row)
	}
	if probe.row.SHA256 != "" || !probe.row.ExpiresAt.Equal(b.clock.Now().Add(pendingTTL)) {
		t.Fatalf("pending row = %+v; want no digest and expiry in %s", probe.row, pendingTTL)
	}
	if !errors.Is(probe.getErr, ErrNotFound) {
		t.Fatalf("Get while pending: %v, want ErrNotFound", probe.getErr)
	}
	if pendingTTL <= PutTimeout {
		t.Fatalf("pendingTTL %s must exceed PutTimeout %s", pendingTTL, PutTimeout)
	}
}

// pendingRow stores the row a Put writes before its bytes (pending until
// pendingTTL), as a process that died mid-Put leaves it, for alice.
func pendingRow(t *testing.T, b *bundle) warehouse.ArtifactRow {
	t.Helper()
	now := b.clock.Now()
	id, err := newID(now)
	if err != nil {
		t.Fatal(err)
	}
	row := warehouse.ArtifactRow{ID: id, Customer: "alice", Key: blobKey("alice", id), ContentType: "text/csv",
		Kind: "query_result", CreatedAt: now, ExpiresAt: now.Add(pendingTTL)}
	if err := b.db.PutArtifact(context.Background(), row); err != nil {
		t.Fatal(err)
	}
	return row
}

// TestCrashedPutIsSwept builds what a process that died in the middle of a
// Put leaves behind (the pending row, part of the blob) and checks that the
// sweep removes both once the pending row expires.
func TestCrashedPutIsSwept(t *testing.T) {
	t.Parallel()
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			s, b := setup(t, Options{URL: be.url})
			ctx := context.Background()
			row := pendingRow(t, b)
			id := row.ID
			if err := s.bucket.WriteAll(ctx, row.Key, []byte("half a res"), nil); err != nil {
				t.Fatal(err)
			}
			if _, _, err := s.Get(ctx, "alice", id); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Get of a pending artifact: %v", err)
			}
			b.clock.Advance(pendingTTL - time.Second)
			if n, _ := s.Sweep(ctx); n != 0 {
				t.Fatalf("swept %d before the pending row expired", n)
			}
			b.clock.Advance(time.Second)
			if n, err := s.Sweep(ctx); err != nil || n != 1 {
				t.Fatalf("Sweep = %d, %v", n, err)
			}
			if keys := listKeys(t, s); len(keys) != 0 {
				t.Fatalf("blobs left: %v", keys)
			}
		})
	}
}

// TestCrashedPutLeavesNoTempFile: in the local folder a Put's bytes go to
// a temporary file next to the blob's name (<key>.<hex>.tmp), renamed into
// place only at the end. A process that dies mid-Put leaves that file, not
// a blob under the key: once the pending row expires, the sweep must take
// the temporary file too, or the folder keeps up to MaxSize of bytes per
// crash that no row leads to.
func TestCrashedPutLeavesNoTempFile(t *testing.T) {
	t.Parallel()
	s, b := setup(t, Options{})
	ctx := context.Background()
	row := pendingRow(t, b)
	// The Put's write as it stands when the process dies: bytes in the
	// temporary file, no Close (so no rename, no clean-up).
	var file *os.File
	w, err := s.bucket.NewWriter(ctx, row.Key, &blob.WriterOptions{ContentType: "text/csv",
		BeforeWrite: func(as func(any) bool) error { as(&file); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("half a result")); err != nil {
		t.Fatal(err)
	}
	if file == nil {
		t.Fatal("the local folder's writer has no file")
	}
	file.Close() // what the kernel does for a dead process
	root := filepath.Join(b.dataDir, "artifacts")
	if got := files(t, root); len(got) != 1 || !strings.HasSuffix(got[0], ".tmp") {
		t.Fatalf("files while the Put is under way: %v, want one temporary file", got)
	}
	b.clock.Advance(pendingTTL)
	if n, err := s.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("Sweep = %d, %v", n, err)
	}
	if got := files(t, root); len(got) != 0 {
		t.Fatalf("files left after the sweep: %v", got)
	}
}

// TestRowWithoutBlob: a row whose blob is gone (deleted by hand, a sweep
// that died between its two deletes) is not found, counted, and swept.
func TestRowWithoutBlob(t *testing.T) {
	t.Parallel()
	s, b := setup(t, Options{})
	ctx := context.Background()
	m := mustPut(t, s, "alice", Meta{ContentType: "image/png", Kind: "card_png"}, []byte("png"))
	if err := os.Remove(filepath.Join(b.dataDir, "artifacts", filepath.FromSlash(blobKey("alice", m.ID)))); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Get(ctx, "alice", m.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get: %v, want ErrNotFound", err)
	}
	if got := testutil.ToFloat64(s.m.missingBlobs); got != 1 {
		t.Fatalf("missing blobs counted %v, want 1", got)
	}
	b.clock.Advance(DefaultTTL)
	if n, err := s.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("Sweep = %d, %v", n, err)
	}
}

func TestPutRefusesBadMeta(t *testing.T) {
	t.Parallel()
	s, b := setup(t, Options{URL: "mem://"})
	now := b.clock.Now()
	for _, tc := range []struct {
		name     string
		customer string
		m        Meta
		want     string
	}{
		{"no customer", "", Meta{Kind: "card_png"}, "customer is empty"},
		{"bad customer", "a\xff", Meta{Kind: "card_png"}, "not valid UTF-8"},
		{"other customer", "alice", Meta{Customer: "bob", Kind: "card_png"}, "another customer"},
		{"no kind", "alice", Meta{}, "kind"},
		{"bad kind", "alice", Meta{Kind: "Card PNG"}, "e.g. card_png"},
		{"long kind", "alice", Meta{Kind: "k" + strings.Repeat("x", 40)}, "at most 40"},
		{"bad type", "alice", Meta{Kind: "x_y", ContentType: "png"}, "not a media type"},
		{"long type", "alice", Meta{Kind: "x_y", ContentType: "text/plain; x=" + strings.Repeat("y", 300)}, "at most 255"},
		{"name with slash", "alice", Meta{Kind: "x_y", Name: "a/b.png"}, "without /"},
		{"name with backslash", "alice", Meta{Kind: "x_y", Name: `a\b.png`}, "without /"},
		{"dot dot", "alice", Meta{Kind: "x_y", Name: ".."}, "not a file name"},
		{"control", "alice", Meta{Kind: "x_y", Name: "a\nb"}, "control character"},
		{"long name", "alice", Meta{Kind: "x_y", Name: strings.Repeat("n", 256)}, "at most 255"},
		{"bad utf8 name", "alice", Meta{Kind: "x_y", Name: "\xff"}, "UTF-8"},
		{"past", "alice", Meta{Kind: "x_y", ExpiresAt: now}, "not in the future"},
		{"too far", "alice", Meta{Kind: "x_y", ExpiresAt: now.Add(MaxTTL + time.Second)}, "MaxTTL"},
	} {
		_, err := s.Put(context.Background(), tc.customer, tc.m, strings.NewReader("x"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
	if got := testutil.ToFloat64(s.m.puts.WithLabelValues("invalid")); got != 16 {
		t.Errorf("invalid puts counted %v, want 16", got)
	}
	if rows, _ := b.db.ExpiredArtifacts(context.Background(), now.Add(MaxTTL), 10); len(rows) != 0 {
		t.Fatalf("refused puts left rows: %+v", rows)
	}
	// A content type is normalized; none is application/octet-stream.
	m := mustPut(t, s, "alice", Meta{Kind: "x_y", ContentType: "Text/CSV; Charset=UTF-8"}, nil)
	if m.ContentType != "text/csv; charset=UTF-8" {
		t.Errorf("content type %q", m.ContentType)
	}
	m = mustPut(t, s, "alice", Meta{Kind: "x_y", Name: "résumé 2026.csv"}, nil)
	if m.ContentType != defaultContentType || m.Name != "résumé 2026.csv" {
		t.Errorf("meta %+v", m)
	}
}

func TestOpenOptions(t *testing.T) {
	t.Parallel()
	db := openWarehouse(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"no index", Options{DataDir: t.TempDir()}, "Index is required"},
		{"no data dir", Options{Index: db}, "DataDir is required"},
		{"negative ttl", Options{Index: db, URL: "mem://", DefaultTTL: -time.Second}, "DefaultTTL"},
		{"long ttl", Options{Index: db, URL: "mem://", DefaultTTL: MaxTTL + time.Hour}, "DefaultTTL"},
		{"negative size", Options{Index: db, URL: "mem://", MaxSize: -1}, "MaxSize"},
		{"scheme", Options{Index: db, URL: "gs://bucket"}, `scheme "gs" is not one of file, s3, mem`},
		{"relative file", Options{Index: db, URL: "file://relative/dir"}, "has no host"},
		{"opaque", Options{Index: db, URL: "file:relative"}, "want scheme://"},
		{"root", Options{Index: db, URL: "file:///"}, "other than /"},
		{"unclean", Options{Index: db, URL: "file:///a/../b"}, "clean path"},
		{"no bucket", Options{Index: db, URL: "s3://?region=x"}, "name the bucket"},
		{"s3 path", Options{Index: db, URL: "s3://b/some/dir"}, "?prefix=dir/"},
		{"credentials", Options{Index: db, URL: "s3://AKIA:secret@b"}, "credentials do not go in the URL"},
		{"unknown file param", Options{Index: db, URL: "file://" + filepath.ToSlash(t.TempDir()) + "?nope=1"}, "nope"},
		{"unknown mem param", Options{Index: db, URL: "mem://?nope=1"}, "nope"},
	} {
		s, err := Open(ctx, tc.o)
		if err == nil {
			s.Close()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", tc.name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: the error repeats the credentials: %v", tc.name, err)
		}
	}

	// An explicit folder works, is created private, and takes a prefix.
	dir := filepath.Join(t.TempDir(), "a", "b")
	s, err := Open(ctx, Options{Index: db, URL: "file://" + filepath.ToSlash(dir) + "?prefix=p/"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m := mustPut(t, s, "alice", Meta{Kind: "x_y"}, []byte("z"))
	if _, err := os.Stat(filepath.Join(dir, "p", customerDir("alice"), m.ID)); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{filepath.Dir(dir), dir} {
		if fi, err := os.Stat(d); err != nil || fi.Mode().Perm() != dirMode {
			t.Fatalf("%s: %v %v", d, fi.Mode(), err)
		}
	}

	// Two stores cannot register their metrics on one registry.
	reg := prometheus.NewRegistry()
	s1, err := Open(ctx, Options{Index: db, URL: "mem://", Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer s1.Close()
	if _, err := Open(ctx, Options{Index: db, URL: "mem://", Registry: reg}); err == nil || !strings.Contains(err.Error(), "register metrics") {
		t.Fatalf("second store on one registry: %v", err)
	}
}

func TestConcurrentPutGet(t *testing.T) {
	t.Parallel()
	s, _ := setup(t, Options{})
	const workers, each = 6, 8
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			customer := fmt.Sprint("c", w%3)
			for i := range each {
				body := []byte(fmt.Sprintf("worker %d item %d", w, i))
				m, err := s.Put(context.Background(), customer, Meta{ContentType: "text/plain", Kind: "note"}, bytes.NewReader(body))
				if err != nil {
					errs <- err
					return
				}
				_, r, err := s.Get(context.Background(), customer, m.ID)
				if err != nil {
					errs <- err
					return
				}
				got, err := io.ReadAll(r)
				r.Close()
				if err != nil || !bytes.Equal(got, body) {
					errs <- fmt.Errorf("read back %q, %v; want %q", got, err, body)
					return
				}
				other := fmt.Sprint("c", (w+1)%3)
				if _, _, err := s.Get(context.Background(), other, m.ID); !errors.Is(err, ErrNotFound) {
					errs <- fmt.Errorf("%s read %s's artifact: %v", other, customer, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestRunSweepsAtStart(t *testing.T) {
	t.Parallel()
	s, b := setup(t, Options{URL: "mem://", DefaultTTL: time.Minute})
	m := mustPut(t, s, "alice", Meta{Kind: "x_y"}, []byte("z"))
	b.clock.Advance(time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	// Run's first sweep happens at once; wait for its effect.
	for testutil.ToFloat64(s.m.swept) < 1 {
		select {
		case err := <-done:
			t.Fatalf("Run returned early: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if row, _ := b.db.GetArtifact(context.Background(), "alice", m.ID); row != nil {
		t.Fatalf("row after Run's sweep: %+v", row)
	}
}

func TestNewIDs(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	now := time.Now()
	for range 1000 {
		id, err := newID(now)
		if err != nil {
			t.Fatal(err)
		}
		if !ValidID(id) || len(id) != IDLen || seen[id] {
			t.Fatalf("id %q: valid=%v len=%d dup=%v", id, ValidID(id), len(id), seen[id])
		}
		seen[id] = true
	}
	// Ids of one millisecond share the ULID time part and nothing
	// predictable after it: two ids differ in most of their random part.
	a, _ := newID(now)
	c, _ := newID(now)
	if a[:10] != c[:10] {
		t.Fatalf("time parts differ: %s %s", a, c)
	}
	same := 0
	for i := 10; i < IDLen; i++ {
		if a[i] == c[i] {
			same++
		}
	}
	if same > 10 {
		t.Fatalf("ids %s and %s share %d of %d random characters", a, c, same, IDLen-10)
	}
}

// TestRealClockMetaRoundTrip: with a clock that has nanoseconds, what Put
// returns is what Get returns (the warehouse keeps microseconds).
func TestRealClockMetaRoundTrip(t *testing.T) {
	t.Parallel()
	s, _ := setup(t, Options{URL: "mem://", Now: func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.Local) }})
	m := mustPut(t, s, "alice", Meta{Kind: "x_y", ExpiresAt: time.Date(2026, 1, 3, 3, 4, 5, 987654321, time.UTC)}, nil)
	got, _, err := readAll(t, s, "alice", m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if *got != *m || got.CreatedAt.Nanosecond() != 123456000 {
		t.Fatalf("Get = %+v, Put returned %+v", *got, *m)
	}
}
