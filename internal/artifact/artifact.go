// Package artifact is the artifact store: the files activitybi makes for a
// customer (rendered cards, query results) kept in a blob store and served
// back to that customer only, until they expire.
//
// # Where the bytes go
//
// The blob store is a gocloud.dev/blob bucket chosen by URL (Options.URL):
// by default a folder under the data directory (file://DataDir/artifacts,
// directories 0700, files 0600, each written to a temporary file next to
// its final name, fsynced and renamed), or s3://bucket?region=... for a team
// server (any S3-compatible service: endpoint, use_path_style, disable_https
// are URL parameters), or mem:// for tests. A blob's key is
// <first 16 hex digits of SHA-256(customer)>/<id>: no customer name in
// clear in a bucket listing, and nothing a caller gives (a name, a kind)
// ever becomes part of a key.
//
// # Where the facts go
//
// Each artifact is a row in the warehouse's artifacts table (Index): owner,
// key, size, content type, digest, expiry. The row, not the bucket, decides
// who may read: Get looks the id up through the owner-scoped Index read, so
// another customer's id is indistinguishable from one that never existed
// (ErrNotFound, and 404 from Handler, with the same body).
//
// # Ids
//
// An id is a ULID (its time part orders ids by creation; its 80 random bits
// come from crypto/rand) followed by 64 more bits from crypto/rand, all in
// lowercase Crockford base32: 39 characters, 144 random bits. Ids are the
// only secret-like thing in a URL, and they are still not a capability:
// every read also needs the owner's credentials.
//
// # Writing and expiry
//
// Put writes the row first (pending: no digest, expiring pendingTTL later),
// then streams the body to the bucket while counting and hashing it, and
// refuses it as soon as it passes MaxSize; it then completes the row with
// the size, digest and real expiry. If the process dies in between, the
// pending row expires and the sweep deletes whatever part of the blob
// exists, so the bucket never keeps bytes that no row leads to. Sweep (and
// Run, every SweepInterval) deletes expired artifacts: the blob, then the
// row, so a crash in between leaves a row that the next sweep finishes.
package artifact

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"mime"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/activitybi/activitybi/internal/redact"
	"github.com/activitybi/activitybi/internal/telemetry"
	"github.com/activitybi/activitybi/internal/warehouse"
)

const (
	// DefaultTTL is how long an artifact lives when neither the Put nor
	// Options.DefaultTTL says otherwise: long enough to come back to a card
	// or a result the next week, short enough that the folder does not grow
	// without bound.
	DefaultTTL = 7 * 24 * time.Hour
	// MaxTTL bounds any artifact's life (Options.DefaultTTL and
	// Meta.ExpiresAt): artifacts are derived data that can be made again.
	MaxTTL = 366 * 24 * time.Hour
	// DefaultMaxSize bounds one artifact's bytes when Options.MaxSize is 0.
	// Cards are tens of KiB; a query result that is larger than this should
	// have been sampled by the query engine.
	DefaultMaxSize = 64 << 20

	// PutTimeout bounds the streaming of one body into the bucket, so that
	// a stalled reader cannot hold a pending row past pendingTTL.
	PutTimeout = 10 * time.Minute
	// pendingTTL is the expiry of a row whose blob is being written. It
	// must exceed PutTimeout, or the sweep could delete a blob while it is
	// being written.
	pendingTTL = 6 * PutTimeout

	// SweepInterval is how often Run deletes expired artifacts.
	SweepInterval = 5 * time.Minute
	// sweepBatch is how many expired rows one Index read returns, and
	// maxSweepRounds how many such reads one Sweep makes at most (the rest
	// wait for the next sweep; a Sweep that stops there is counted).
	sweepBatch     = 500
	maxSweepRounds = 20

	// cleanupTimeout bounds the best-effort removal of a failed Put's row
	// and blob, which runs even when the Put's context was cancelled.
	cleanupTimeout = 30 * time.Second

	// MaxNameLen is the longest Meta.Name in bytes (a file name).
	MaxNameLen = 255
	// MaxContentTypeLen is the longest Meta.ContentType in bytes.
	MaxContentTypeLen = 255

	// dirMode and fileMode are the permissions of the default folder's
	// directories and files: artifacts are private to the user running the
	// core.
	dirMode  = 0o700
	fileMode = 0o600

	// customerHashLen is how many hex digits of SHA-256(customer) name a
	// customer's folder in the bucket: 64 bits, so two customers sharing a
	// prefix is not a practical concern (and would still not share ids).
	customerHashLen = 16

	// defaultContentType is used when a Put names none.
	defaultContentType = "application/octet-stream"
)

// kindPattern is what Meta.Kind must look like: a short lowercase word,
// e.g. card_png, card_svg, query_result.
var kindPattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,39}$`)

var (
	// ErrNotFound is returned for an artifact the customer does not have:
	// never stored, another customer's, expired, deleted, or still being
	// written. The cases are deliberately not told apart.
	ErrNotFound = errors.New("artifact not found")
	// ErrTooLarge is returned by Put for a body larger than Options.MaxSize.
	ErrTooLarge = errors.New("artifact too large")
)

// Index stores the artifacts' rows: the warehouse's artifacts table
// (duckdb.DB implements it). GetArtifact must only ever return a row of the
// customer it is given.
type Index interface {
	PutArtifact(ctx context.Context, m warehouse.ArtifactRow) error
	// GetArtifact returns nil, nil when the customer has no such row.
	GetArtifact(ctx context.Context, customer, id string) (*warehouse.ArtifactRow, error)
	DeleteArtifact(ctx context.Context, customer, id string) error
	// ExpiredArtifacts returns up to limit rows of any customer whose
	// expiry is at or before now.
	ExpiredArtifacts(ctx context.Context, now time.Time, limit int) ([]warehouse.ArtifactRow, error)
}

// Options configure Open. The zero value of each field means its default.
type Options struct {
	// URL chooses the blob store: "file:///abs/dir", "s3://bucket?region=
	// ...&endpoint=...&use_path_style=true", "mem://". Every URL also takes
	// gocloud's prefix=some/dir/. Default "": a folder named artifacts in
	// DataDir.
	URL string
	// DataDir is the core's data directory; required when URL is empty.
	DataDir string
	// Index is where the rows live (the warehouse); required.
	Index Index
	// DefaultTTL is the life of an artifact whose Put gives no ExpiresAt.
	// Default DefaultTTL (7 days); at most MaxTTL.
	DefaultTTL time.Duration
	// MaxSize bounds one artifact's bytes. Default DefaultMaxSize (64 MiB).
	MaxSize int64
	// Registry receives the activitybi_artifact_* metrics. Default: none.
	Registry prometheus.Registerer
	// Logger receives warnings (a row whose blob is gone, a failed sweep).
	// Default: discard.
	Logger *slog.Logger
	// Now is the clock for creation and expiry. Default time.Now.
	Now func() time.Time
}

func (o *Options) setDefaults() error {
	if o.Index == nil {
		return errors.New("artifact: Options.Index is required")
	}
	if o.URL == "" && o.DataDir == "" {
		return errors.New("artifact: Options.DataDir is required when Options.URL is empty")
	}
	switch {
	case o.DefaultTTL == 0:
		o.DefaultTTL = DefaultTTL
	case o.DefaultTTL < 0 || o.DefaultTTL > MaxTTL:
		return fmt.Errorf("artifact: Options.DefaultTTL must be between 0 and %s, got %s", MaxTTL, o.DefaultTTL)
	}
	switch {
	case o.MaxSize == 0:
		o.MaxSize = DefaultMaxSize
	case o.MaxSize < 0:
		return fmt.Errorf("artifact: Options.MaxSize must be positive, got %d", o.MaxSize)
	}
	o.Logger = telemetry.OrDiscard(o.Logger)
	if o.Now == nil {
		o.Now = time.Now
	}
	return nil
}

// Meta describes one artifact. In a Put, the caller sets ContentType, Kind,
// and optionally Name and ExpiresAt; the other fields are the store's.
type Meta struct {
	ID       string // generated by Put
	Customer string // the owner; a Put's must be empty or the Put's customer
	// ContentType is a media type, e.g. image/png; default
	// application/octet-stream.
	ContentType string
	// Name is the file name offered on download: at most MaxNameLen bytes
	// of UTF-8, no control characters, no / or \. Optional.
	Name string
	Size int64 // bytes, counted by Put
	// SHA256 is the hex SHA-256 of the content, computed by Put; Handler
	// sends it as the ETag.
	SHA256    string
	CreatedAt time.Time // set by Put, UTC
	// ExpiresAt is when the sweep removes the artifact. In a Put, zero
	// means Options.DefaultTTL from now; otherwise it must be in the future
	// and at most MaxTTL away.
	ExpiresAt time.Time
	// Kind says what the artifact is: card_png, card_svg, query_result, ...
	// (lowercase letters, digits and _, at most 40, starting with a letter).
	Kind string
}

// Store is the artifact store. It is safe for concurrent use.
type Store struct {
	opts   Options
	log    *slog.Logger
	bucket *blob.Bucket
	// fileRoot is the bucket's folder when it is a local one, so that Put
	// can fsync what it wrote; "" otherwise.
	fileRoot string
	m        *metrics
	// sweepBatch is the constant sweepBatch; tests make it small.
	sweepBatch int
}

// Open opens the blob store named by o.URL (creating the default folder if
// needed) and checks that it can be reached, so that a wrong URL or missing
// credentials fail at start, not at the first Put.
func Open(ctx context.Context, o Options) (*Store, error) {
	if err := o.setDefaults(); err != nil {
		return nil, err
	}
	m, err := newMetrics(o.Registry)
	if err != nil {
		return nil, err
	}
	b, root, err := openBucket(ctx, o.URL, o.DataDir)
	if err != nil {
		return nil, err
	}
	ok, err := b.IsAccessible(ctx)
	if err == nil && !ok {
		err = errors.New("the bucket does not exist or cannot be reached")
	}
	if err != nil {
		_ = b.Close()
		where := redact.URL(o.URL)
		if o.URL == "" {
			where = filepath.Join(o.DataDir, defaultDirName)
		}
		return nil, fmt.Errorf("artifact: open %s: %w", where, err)
	}
	return &Store{opts: o, log: o.Logger, bucket: b, fileRoot: root, m: m, sweepBatch: sweepBatch}, nil
}

// Close releases the bucket.
func (s *Store) Close() error {
	return s.bucket.Close()
}

// Put stores body as a new artifact of customer and returns its Meta. The
// body is read to its end (or to MaxSize+1 bytes: then ErrTooLarge), for
// at most PutTimeout; a nil body is an empty artifact.
func (s *Store) Put(ctx context.Context, customer string, m Meta, body io.Reader) (*Meta, error) {
	start := time.Now()
	out, err := s.put(ctx, customer, m, body)
	s.m.putDuration.Observe(time.Since(start).Seconds())
	switch {
	case err == nil:
		s.m.puts.WithLabelValues("stored").Inc()
		s.m.putBytes.Add(float64(out.Size))
	case errors.Is(err, ErrTooLarge):
		s.m.puts.WithLabelValues("too_large").Inc()
	case errors.Is(err, errInvalid):
		s.m.puts.WithLabelValues("invalid").Inc()
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		// PutTimeout, not the caller's deadline.
		s.m.puts.WithLabelValues("timeout").Inc()
	default:
		s.m.puts.WithLabelValues("error").Inc()
	}
	return out, err
}

// errInvalid marks a Put refused for its arguments (the caller's mistake).
var errInvalid = errors.New("invalid artifact")

func (s *Store) put(ctx context.Context, customer string, m Meta, body io.Reader) (*Meta, error) {
	// The warehouse keeps microseconds: what Put returns is then what Get
	// returns.
	now := s.opts.Now().UTC().Truncate(time.Microsecond)
	if body == nil {
		body = strings.NewReader("")
	}
	if err := checkCustomer(customer); err != nil {
		return nil, fmt.Errorf("%w: %w", errInvalid, err)
	}
	meta, err := s.checkMeta(customer, m, now)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errInvalid, err)
	}
	if meta.ID, err = newID(now); err != nil {
		return nil, fmt.Errorf("artifact id: %w", err)
	}
	row := warehouse.ArtifactRow{ID: meta.ID, Customer: customer, Key: blobKey(customer, meta.ID),
		ContentType: meta.ContentType, Name: meta.Name, Kind: meta.Kind,
		CreatedAt: now, ExpiresAt: now.Add(pendingTTL)}
	if err := s.opts.Index.PutArtifact(ctx, row); err != nil {
		return nil, fmt.Errorf("put artifact: %w", err)
	}
	size, sum, err := s.write(ctx, row.Key, meta.ContentType, body)
	if err == nil {
		row.Size, row.SHA256, row.ExpiresAt = size, sum, meta.ExpiresAt
		if err = s.opts.Index.PutArtifact(ctx, row); err != nil {
			err = fmt.Errorf("put artifact: %w", err)
		}
	}
	if err != nil {
		s.discard(ctx, row)
		return nil, err
	}
	meta.Size, meta.SHA256 = size, sum
	return meta, nil
}

// checkMeta validates a Put's Meta and returns the one to store.
func (s *Store) checkMeta(customer string, m Meta, now time.Time) (*Meta, error) {
	if m.Customer != "" && m.Customer != customer {
		return nil, errors.New("the Meta names another customer than the Put's; leave Meta.Customer empty")
	}
	out := Meta{Customer: customer, Name: m.Name, Kind: m.Kind, CreatedAt: now}
	ct := m.ContentType
	if ct == "" {
		ct = defaultContentType
	}
	if len(ct) > MaxContentTypeLen {
		return nil, fmt.Errorf("content type is %d bytes long, at most %d are accepted", len(ct), MaxContentTypeLen)
	}
	mt, params, err := mime.ParseMediaType(ct)
	if typ, sub, ok := strings.Cut(mt, "/"); err == nil && (!ok || typ == "" || sub == "") {
		err = errors.New("want type/subtype")
	}
	if err != nil {
		return nil, fmt.Errorf("content type %q is not a media type like image/png or text/csv; charset=utf-8: %w", ct, err)
	}
	if out.ContentType = mime.FormatMediaType(mt, params); out.ContentType == "" {
		return nil, fmt.Errorf("content type %q cannot be sent in a header", ct)
	}
	if !kindPattern.MatchString(m.Kind) {
		return nil, fmt.Errorf("kind %q must be a lowercase word of letters, digits and _ (at most 40, starting with a letter), e.g. card_png, card_svg, query_result", m.Kind)
	}
	if err := checkName(m.Name); err != nil {
		return nil, err
	}
	switch {
	case m.ExpiresAt.IsZero():
		out.ExpiresAt = now.Add(s.opts.DefaultTTL)
	case !m.ExpiresAt.After(now):
		return nil, fmt.Errorf("ExpiresAt %s is not in the future", m.ExpiresAt.UTC().Format(time.RFC3339))
	case m.ExpiresAt.Sub(now) > MaxTTL:
		return nil, fmt.Errorf("ExpiresAt %s is more than %s away (MaxTTL)", m.ExpiresAt.UTC().Format(time.RFC3339), MaxTTL)
	default:
		out.ExpiresAt = m.ExpiresAt.UTC().Truncate(time.Microsecond)
	}
	return &out, nil
}

// checkName refuses a file name that could not be offered as one.
func checkName(n string) error {
	switch {
	case len(n) > MaxNameLen:
		return fmt.Errorf("name is %d bytes long, at most %d are accepted", len(n), MaxNameLen)
	case !utf8.ValidString(n):
		return errors.New("name is not valid UTF-8")
	case strings.ContainsAny(n, `/\`):
		return fmt.Errorf("name %q must be a file name, without / or \\", n)
	case n == "." || n == "..":
		return fmt.Errorf("name %q is not a file name", n)
	}
	if strings.IndexFunc(n, unicode.IsControl) >= 0 {
		return fmt.Errorf("name %q contains a control character", n)
	}
	return nil
}

// checkCustomer refuses a customer no row can carry.
func checkCustomer(c string) error {
	switch {
	case c == "":
		return errors.New("customer is empty")
	case !utf8.ValidString(c):
		return errors.New("customer is not valid UTF-8")
	case strings.IndexByte(c, 0) >= 0:
		return errors.New("customer contains a NUL byte")
	}
	return nil
}

// write streams body into the blob at key, counting and hashing it, and
// refuses it (aborting the write) past MaxSize.
func (s *Store) write(ctx context.Context, key, contentType string, body io.Reader) (int64, string, error) {
	wctx, cancel := context.WithTimeout(ctx, PutTimeout)
	defer cancel()
	// A local folder: the root needs an fsync only when this blob is the
	// first of its customer (its folder is then a new name in the root).
	newDir := false
	if s.fileRoot != "" {
		_, err := os.Stat(filepath.Join(s.fileRoot, filepath.FromSlash(path.Dir(key))))
		newDir = errors.Is(err, fs.ErrNotExist)
	}
	var file *os.File
	w, err := s.bucket.NewWriter(wctx, key, &blob.WriterOptions{
		ContentType: contentType,
		BeforeWrite: func(as func(any) bool) error {
			// A local folder: the file is created 0666 less umask; make
			// it private before any byte is in it.
			if as(&file) {
				return file.Chmod(fileMode)
			}
			return nil
		},
	})
	if err != nil {
		return 0, "", fmt.Errorf("write artifact: %w", err)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), io.LimitReader(body, s.opts.MaxSize+1))
	if err == nil && n > s.opts.MaxSize {
		err = fmt.Errorf("%w: more than %d bytes (the store's MaxSize); write large results in parts or sample them", ErrTooLarge, s.opts.MaxSize)
	}
	if err == nil && file != nil {
		// The file is renamed into place by Close: make its bytes durable
		// first, so a crash cannot leave an empty file under the name.
		if serr := file.Sync(); serr != nil {
			err = fmt.Errorf("write artifact: fsync: %w", serr)
		}
	}
	if err != nil {
		cancel() // aborts the write: Close then discards what was written
		_ = w.Close()
		if errors.Is(err, ErrTooLarge) {
			return 0, "", err
		}
		return 0, "", fmt.Errorf("write artifact: %w", err)
	}
	if err := w.Close(); err != nil {
		return 0, "", fmt.Errorf("write artifact: %w", err)
	}
	if s.fileRoot != "" {
		if err := syncDirs(s.fileRoot, key, newDir); err != nil {
			return 0, "", fmt.Errorf("write artifact: %w", err)
		}
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// discard removes what a failed Put left (blob, then row), best effort: what
// it cannot remove, the sweep removes when the pending row expires.
func (s *Store) discard(ctx context.Context, row warehouse.ArtifactRow) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if err := s.bucket.Delete(ctx, row.Key); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
		s.log.Warn("artifact: remove the blob of a failed put; the sweep will retry", "id", row.ID, "err", err)
		return
	}
	if err := s.opts.Index.DeleteArtifact(ctx, row.Customer, row.ID); err != nil {
		s.log.Warn("artifact: remove the row of a failed put; the sweep will retry", "id", row.ID, "err", err)
	}
}

// Stat returns the Meta of the customer's artifact, or ErrNotFound.
func (s *Store) Stat(ctx context.Context, customer, id string) (*Meta, error) {
	row, err := s.lookup(ctx, customer, id)
	if err != nil {
		return nil, err
	}
	return metaOf(row), nil
}

// lookup returns the customer's servable row, or ErrNotFound.
func (s *Store) lookup(ctx context.Context, customer, id string) (*warehouse.ArtifactRow, error) {
	if !ValidID(id) || checkCustomer(customer) != nil {
		return nil, ErrNotFound
	}
	row, err := s.opts.Index.GetArtifact(ctx, customer, id)
	if err != nil {
		return nil, fmt.Errorf("get artifact: %w", err)
	}
	if row == nil || row.Customer != customer || row.SHA256 == "" || !s.opts.Now().Before(row.ExpiresAt) {
		return nil, ErrNotFound
	}
	return row, nil
}

// Get returns the customer's artifact and its content; the caller closes
// it. The reader also implements io.Seeker. Another customer's id, like a
// missing, expired or deleted one, is ErrNotFound.
func (s *Store) Get(ctx context.Context, customer, id string) (*Meta, io.ReadCloser, error) {
	row, r, err := s.open(ctx, customer, id)
	if err != nil {
		return nil, nil, err
	}
	return metaOf(row), r, nil
}

func (s *Store) open(ctx context.Context, customer, id string) (*warehouse.ArtifactRow, *blob.Reader, error) {
	row, err := s.lookup(ctx, customer, id)
	if err != nil {
		s.countGet(err)
		return nil, nil, err
	}
	r, err := s.bucket.NewReader(ctx, row.Key, nil)
	if gcerrors.Code(err) == gcerrors.NotFound {
		// The row outlived its blob: removed by hand, or a sweep that
		// died between the two deletes. Nothing to serve.
		s.log.Warn("artifact: the row has no blob", "id", id, "key", row.Key)
		s.m.missingBlobs.Inc()
		err = ErrNotFound
	} else if err != nil {
		err = fmt.Errorf("read artifact: %w", err)
	}
	s.countGet(err)
	if err != nil {
		return nil, nil, err
	}
	return row, r, nil
}

func (s *Store) countGet(err error) {
	switch {
	case err == nil:
		s.m.gets.WithLabelValues("found").Inc()
	case errors.Is(err, ErrNotFound):
		s.m.gets.WithLabelValues("not_found").Inc()
	default:
		s.m.gets.WithLabelValues("error").Inc()
	}
}

// Delete removes the customer's artifact: the blob, then the row. Another
// customer's id, like a missing one, is ErrNotFound.
func (s *Store) Delete(ctx context.Context, customer, id string) error {
	if !ValidID(id) || checkCustomer(customer) != nil {
		return ErrNotFound
	}
	row, err := s.opts.Index.GetArtifact(ctx, customer, id)
	if err != nil {
		return fmt.Errorf("delete artifact: %w", err)
	}
	if row == nil || row.Customer != customer {
		return ErrNotFound
	}
	return s.remove(ctx, *row)
}

// remove deletes a row's blob, then the row.
func (s *Store) remove(ctx context.Context, row warehouse.ArtifactRow) error {
	if err := s.bucket.Delete(ctx, row.Key); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
		return fmt.Errorf("delete artifact %s: blob: %w", row.ID, err)
	}
	if err := s.removeTemps(row.Key); err != nil {
		return fmt.Errorf("delete artifact %s: blob: %w", row.ID, err)
	}
	if err := s.opts.Index.DeleteArtifact(ctx, row.Customer, row.ID); err != nil {
		return fmt.Errorf("delete artifact %s: row: %w", row.ID, err)
	}
	return nil
}

// removeTemps deletes, in a local folder, the temporary files of key that
// a process dying mid-Put leaves next to it (<key>.<hex>.tmp, fileblob's
// name): nothing else ever removes them. Only rows that can no longer be
// written come here (swept after pendingTTL, which exceeds PutTimeout, or
// complete), so no Put is under way on them.
func (s *Store) removeTemps(key string) error {
	if s.fileRoot == "" {
		return nil
	}
	// key is <hex>/<id> (ValidID): no glob metacharacters.
	temps, err := filepath.Glob(filepath.Join(s.fileRoot, filepath.FromSlash(key)) + ".*.tmp")
	if err != nil {
		return err
	}
	for _, p := range temps {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

func metaOf(r *warehouse.ArtifactRow) *Meta {
	return &Meta{ID: r.ID, Customer: r.Customer, ContentType: r.ContentType, Name: r.Name,
		Size: r.Size, SHA256: r.SHA256, CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt, Kind: r.Kind}
}

// customerDir names a customer's folder in the bucket without naming the
// customer.
func customerDir(customer string) string {
	sum := sha256.Sum256([]byte(customer))
	return hex.EncodeToString(sum[:])[:customerHashLen]
}

// blobKey is where an artifact's bytes live in the bucket. id must be
// ValidID (only [0-9a-z]), so the key needs no escaping anywhere.
func blobKey(customer, id string) string {
	return customerDir(customer) + "/" + id
}
