package artifact

import (
	"bytes"
	"context"
	"flag"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/activitybi/activitybi/internal/warehouse/duckdb"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// The warehouse is the store's index.
var _ Index = (*duckdb.DB)(nil)

// fakeClock is Options.Now for tests that move time (expiry).
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)}
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.mu.Unlock()
}

// bundle is what setup returns beside the store.
type bundle struct {
	db      *duckdb.DB
	dataDir string // the default folder is dataDir/artifacts
	clock   *fakeClock
	reg     *prometheus.Registry
}

// openWarehouse opens and migrates a real DuckDB file in t.TempDir().
func openWarehouse(t testing.TB) *duckdb.DB {
	t.Helper()
	db, err := duckdb.Open(context.Background(), duckdb.Options{Path: filepath.Join(t.TempDir(), "w.duckdb")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("close warehouse: %v", err)
		}
	})
	if _, err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return db
}

// setup opens a store on a real DuckDB index with a fake clock; o's Index,
// DataDir, Now and Registry are filled in when empty. The store closes at
// cleanup.
func setup(t testing.TB, o Options) (*Store, *bundle) {
	t.Helper()
	b := &bundle{clock: newFakeClock(), reg: prometheus.NewRegistry()}
	if o.Index == nil {
		b.db = openWarehouse(t)
		o.Index = b.db
	}
	if o.DataDir == "" {
		o.DataDir = t.TempDir()
	}
	b.dataDir = o.DataDir
	if o.Now == nil {
		o.Now = b.clock.Now
	}
	if o.Registry == nil {
		o.Registry = b.reg
	}
	s, err := Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return s, b
}

// backends are the URLs every store test runs against ("" is the default
// folder); the S3 backend has its own contract test.
var backends = []struct{ name, url string }{
	{"file", ""},
	{"mem", "mem://"},
}

// testPNG returns a real, opaque PNG of a little over n bytes: random
// pixels do not compress, so the file is its 3 bytes a pixel and a little
// overhead.
func testPNG(t testing.TB, n int) []byte {
	t.Helper()
	side := 1
	for side*side*3 < n {
		side++
	}
	img := image.NewNRGBA(image.Rect(0, 0, side, side))
	r := rand.New(rand.NewPCG(1, 2))
	for y := range side {
		for x := range side {
			img.Set(x, y, color.NRGBA{uint8(r.Uint32()), uint8(r.Uint32()), uint8(r.Uint32()), 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
