package artifact

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// Contract tests of the S3 path: the store opened with an s3:// URL talks
// to gofakes3, an S3-compatible server, over real HTTP on loopback, through
// the same gocloud s3blob driver and AWS SDK that talk to S3 in production.
// gofakes3 does not check signatures, so these tests hold the requests'
// shape and the store's behaviour, not AWS's authorization.

const s3TestBucket = "activitybi-artifacts"

// fakeS3 is a gofakes3 server on loopback and what it was asked.
type fakeS3 struct {
	backend *s3mem.Backend
	url     string // http://127.0.0.1:port
	mu      sync.Mutex
	calls   map[string]int // "PUT", "GET", "HEAD", "DELETE", ... on object keys
}

func (f *fakeS3) count(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[method]
}

// startFakeS3 serves gofakes3 on a loopback port and points the AWS SDK's
// environment at static test credentials only (no ~/.aws, no instance
// metadata). t.Setenv makes these tests sequential.
func startFakeS3(t testing.TB) *fakeS3 {
	t.Helper()
	f := &fakeS3{backend: s3mem.New(), calls: map[string]int{}}
	if err := f.backend.CreateBucket(s3TestBucket); err != nil {
		t.Fatal(err)
	}
	s3 := gofakes3.New(f.backend).Server()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Path style: /bucket/key; count requests on objects.
		if strings.Count(strings.TrimPrefix(r.URL.Path, "/"), "/") >= 1 {
			f.mu.Lock()
			f.calls[r.Method]++
			f.mu.Unlock()
		}
		if _, isTest := t.(*testing.T); isTest && testing.Verbose() {
			t.Logf("s3 %s %s", r.Method, r.URL)
		}
		s3.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	f.url = srv.URL
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID":           "activitybi-test",
		"AWS_SECRET_ACCESS_KEY":       "activitybi-test-secret",
		"AWS_SESSION_TOKEN":           "",
		"AWS_PROFILE":                 "",
		"AWS_REGION":                  "",
		"AWS_CONFIG_FILE":             filepath.Join(dir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
		"AWS_EC2_METADATA_DISABLED":   "true",
	} {
		t.Setenv(k, v)
	}
	return f
}

// storeURL is the s3:// URL of the fake's bucket: endpoint, path-style
// addressing (no bucket.host DNS on loopback), plain HTTP, and checksums
// only where S3 requires them (gofakes3 predates the SDK's default CRC
// trailers).
func (f *fakeS3) storeURL(bucket string) string {
	q := url.Values{}
	q.Set("region", "us-east-1")
	q.Set("endpoint", f.url)
	q.Set("use_path_style", "true")
	q.Set("disable_https", "true")
	q.Set("request_checksum_calculation", "when_required")
	q.Set("response_checksum_validation", "when_required")
	return "s3://" + bucket + "?" + q.Encode()
}

func (f *fakeS3) keys(t *testing.T) []string {
	t.Helper()
	l, err := f.backend.ListBucket(s3TestBucket, nil, gofakes3.ListBucketPage{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range l.Contents {
		out = append(out, c.Key)
	}
	return out
}

func TestContractS3PutGetIsolationExpiry(t *testing.T) {
	f := startFakeS3(t)
	s, b := setup(t, Options{URL: f.storeURL(s3TestBucket), DefaultTTL: time.Hour})
	ctx := context.Background()

	png := testPNG(t, 50_000)
	a := mustPut(t, s, "alice@example.com", Meta{ContentType: "image/png", Kind: "card_png"}, png)
	// A body larger than one multipart part (5 MiB) goes up in parts.
	big := bytes.Repeat([]byte("0123456789abcdef"), 6<<20/16)
	g := mustPut(t, s, "bob", Meta{ContentType: "text/csv", Kind: "query_result", ExpiresAt: b.clock.Now().Add(2 * time.Hour)}, big)

	keys := f.keys(t)
	want := []string{blobKey("alice@example.com", a.ID), blobKey("bob", g.ID)}
	if strings.Join(keys, " ") != strings.Join(want, " ") && strings.Join(keys, " ") != want[1]+" "+want[0] {
		t.Fatalf("bucket keys %v, want %v", keys, want)
	}
	for _, k := range keys {
		if strings.Contains(k, "alice") || strings.Contains(k, "bob") {
			t.Fatalf("a key names its customer: %s", k)
		}
	}
	obj, err := f.backend.HeadObject(s3TestBucket, blobKey("alice@example.com", a.ID))
	if err != nil || obj.Size != int64(len(png)) || obj.Metadata["Content-Type"] != "image/png" {
		t.Fatalf("object in S3: %+v, %v", obj, err)
	}
	if _, data, err := readAll(t, s, "bob", g.ID); err != nil || !bytes.Equal(data, big) {
		t.Fatalf("read back the multipart artifact: %d bytes, %v", len(data), err)
	}

	// Isolation over real HTTP through Handler, the bytes from S3.
	base := serveHTTP(t, s)
	if r := do(t, "GET", base+"/artifacts/"+a.ID, "alice@example.com"); r.code != 200 || !bytes.Equal(r.body, png) {
		t.Fatalf("owner over HTTP: %d, %d bytes", r.code, len(r.body))
	}
	before := f.count("GET")
	if r := do(t, "GET", base+"/artifacts/"+a.ID, "bob"); r.code != 404 || string(r.body) != "{\"error\":\"artifact not found\"}\n" {
		t.Fatalf("another customer over HTTP: %d %q", r.code, r.body)
	}
	if f.count("GET") != before {
		t.Fatal("another customer's request reached S3")
	}
	// HEAD and a matching If-None-Match are answered from the row: S3
	// is not asked.
	before = f.count("GET") + f.count("HEAD")
	if r := do(t, "HEAD", base+"/artifacts/"+a.ID, "alice@example.com"); r.code != 200 || r.header.Get("Content-Length") != fmt.Sprint(len(png)) {
		t.Fatalf("HEAD: %d %v", r.code, r.header)
	}
	if r := do(t, "GET", base+"/artifacts/"+a.ID, "alice@example.com", "If-None-Match", `"`+a.SHA256+`"`); r.code != 304 {
		t.Fatalf("If-None-Match: %d", r.code)
	}
	if n := f.count("GET") + f.count("HEAD"); n != before {
		t.Fatalf("HEAD and 304 made %d S3 requests", n-before)
	}
	// Byte ranges become S3 range reads.
	if r := do(t, "GET", base+"/artifacts/"+g.ID, "bob", "Range", "bytes=16-31"); r.code != 206 || string(r.body) != "0123456789abcdef" {
		t.Fatalf("range: %d %q", r.code, r.body)
	}

	// Expiry removes the object and the row; the other stays.
	b.clock.Advance(time.Hour)
	if n, err := s.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("Sweep = %d, %v", n, err)
	}
	if _, err := f.backend.HeadObject(s3TestBucket, blobKey("alice@example.com", a.ID)); err == nil {
		t.Fatal("the expired object is still in S3")
	}
	if row, err := b.db.GetArtifact(ctx, "alice@example.com", a.ID); err != nil || row != nil {
		t.Fatalf("the expired row: %+v, %v", row, err)
	}
	if keys := f.keys(t); len(keys) != 1 || keys[0] != blobKey("bob", g.ID) {
		t.Fatalf("keys after the sweep: %v", keys)
	}

	// Delete removes from S3 too.
	if err := s.Delete(ctx, "bob", g.ID); err != nil {
		t.Fatal(err)
	}
	if keys := f.keys(t); len(keys) != 0 {
		t.Fatalf("keys after Delete: %v", keys)
	}
	if f.count("PUT") == 0 || f.count("DELETE") < 2 {
		t.Fatalf("S3 calls: %v", f.calls)
	}
}

func TestContractS3SizeLimitLeavesNothing(t *testing.T) {
	f := startFakeS3(t)
	const limit = 64 << 10
	s, b := setup(t, Options{URL: f.storeURL(s3TestBucket), MaxSize: limit})
	ctx := context.Background()
	if _, err := s.Put(ctx, "alice", Meta{ContentType: "text/csv", Kind: "query_result"}, bytes.NewReader(make([]byte, limit+1))); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Put over the limit: %v", err)
	}
	// A body that fails midway is not stored either.
	if _, err := s.Put(ctx, "alice", Meta{ContentType: "text/csv", Kind: "query_result"}, io.MultiReader(bytes.NewReader(make([]byte, 1000)), &failingReader{})); err == nil {
		t.Fatal("a failing body was stored")
	}
	if keys := f.keys(t); len(keys) != 0 {
		t.Fatalf("objects left in S3: %v", keys)
	}
	if rows, _ := b.db.ExpiredArtifacts(ctx, b.clock.Now().Add(MaxTTL), 10); len(rows) != 0 {
		t.Fatalf("rows left: %+v", rows)
	}
	m := mustPut(t, s, "alice", Meta{ContentType: "text/csv", Kind: "query_result"}, make([]byte, limit))
	if m.Size != limit {
		t.Fatalf("size %d", m.Size)
	}
}

func TestContractS3OpenFailsFast(t *testing.T) {
	f := startFakeS3(t)
	db := openWarehouse(t)
	_, err := Open(context.Background(), Options{Index: db, URL: f.storeURL("no-such-bucket")})
	if err == nil || !strings.Contains(err.Error(), "does not exist or cannot be reached") {
		t.Fatalf("Open of a missing bucket: %v", err)
	}
	_, err = Open(context.Background(), Options{Index: db, URL: f.storeURL(s3TestBucket) + "&nonsense=1"})
	if err == nil || !strings.Contains(err.Error(), "nonsense") {
		t.Fatalf("Open with an unknown parameter: %v", err)
	}
}
