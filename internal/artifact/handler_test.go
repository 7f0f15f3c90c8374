package artifact

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// tokenCustomer is the test's customerOf: "Bearer tok-NAME" is customer
// NAME, as the core maps a bearer token to its customer.
func tokenCustomer(r *http.Request) (string, error) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer tok-")
	if !ok || tok == "" {
		return "", errors.New("missing bearer token")
	}
	return tok, nil
}

// serveHTTP serves s.Handler on a real loopback listener.
func serveHTTP(t testing.TB, s *Store) string {
	t.Helper()
	srv := httptest.NewServer(s.Handler(tokenCustomer))
	t.Cleanup(srv.Close)
	return srv.URL
}

type response struct {
	code   int
	header http.Header
	body   []byte
}

func do(t testing.TB, method, url, customer string, hdr ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if customer != "" {
		req.Header.Set("Authorization", "Bearer tok-"+customer)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, body}
}

func TestHandlerIsolation(t *testing.T) {
	t.Parallel()
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			s, _ := setup(t, Options{URL: be.url})
			base := serveHTTP(t, s)
			png := testPNG(t, 3000)
			a := mustPut(t, s, "alice", Meta{ContentType: "image/png", Kind: "card_png"}, png)

			got := do(t, "GET", base+"/artifacts/"+a.ID, "alice")
			if got.code != 200 || !bytes.Equal(got.body, png) {
				t.Fatalf("owner: %d, %d bytes", got.code, len(got.body))
			}

			// Bob gets exactly what a missing id gets.
			missing := do(t, "GET", base+"/artifacts/"+strings.Repeat("0", IDLen), "bob")
			if missing.code != 404 || string(missing.body) != "{\"error\":\"artifact not found\"}\n" {
				t.Fatalf("missing id: %d %q", missing.code, missing.body)
			}
			for _, tc := range []struct{ method, path, customer string }{
				{"GET", "/artifacts/" + a.ID, "bob"},
				{"HEAD", "/artifacts/" + a.ID, "bob"},
				{"GET", "/artifacts/" + a.ID, "Alice"},
				{"GET", "/artifacts/" + strings.ToUpper(a.ID), "alice"},
				{"GET", "/artifacts/" + a.ID + "x", "alice"},
				{"GET", "/artifacts/%2e%2e%2f" + a.ID, "alice"},
				{"GET", "/artifacts/" + a.ID + "?customer=alice", "bob"},
			} {
				r := do(t, tc.method, base+tc.path, tc.customer)
				if r.code != 404 {
					t.Errorf("%s %s as %s: %d, want 404", tc.method, tc.path, tc.customer, r.code)
				}
				if tc.method == "GET" && !bytes.Equal(r.body, missing.body) {
					t.Errorf("%s %s as %s: body %q differs from a missing id's", tc.method, tc.path, tc.customer, r.body)
				}
				if r.header.Get("ETag") != "" || r.header.Get("Content-Disposition") != "" {
					t.Errorf("%s %s as %s: the 404 tells something: %v", tc.method, tc.path, tc.customer, r.header)
				}
			}

			// No credentials: 401 with the reason.
			r := do(t, "GET", base+"/artifacts/"+a.ID, "")
			if r.code != 401 || !strings.Contains(string(r.body), "missing bearer token") || r.header.Get("WWW-Authenticate") != "Bearer" {
				t.Fatalf("no token: %d %q %v", r.code, r.body, r.header)
			}
			// Only GET and HEAD.
			if r := do(t, "DELETE", base+"/artifacts/"+a.ID, "alice"); r.code != http.StatusMethodNotAllowed {
				t.Fatalf("DELETE: %d", r.code)
			}
			if got := testutil.ToFloat64(s.m.gets.WithLabelValues("found")); got != 1 {
				t.Errorf("found gets counted %v, want 1", got)
			}
		})
	}
}

func TestHandlerConditionalRangeHead(t *testing.T) {
	t.Parallel()
	s, _ := setup(t, Options{})
	base := serveHTTP(t, s)
	body := []byte("a,b\n1,2\n3,4\n")
	m := mustPut(t, s, "alice", Meta{ContentType: "text/csv", Kind: "query_result"}, body)
	url := base + "/artifacts/" + m.ID

	full := do(t, "GET", url, "alice")
	etag := full.header.Get("ETag")
	if full.code != 200 || etag != `"`+m.SHA256+`"` || full.header.Get("Content-Length") != fmt.Sprint(len(body)) {
		t.Fatalf("GET: %d %v", full.code, full.header)
	}
	if r := do(t, "GET", url, "alice", "If-None-Match", etag); r.code != http.StatusNotModified || len(r.body) != 0 {
		t.Fatalf("If-None-Match: %d %q", r.code, r.body)
	}
	if r := do(t, "GET", url, "alice", "If-None-Match", `"other"`); r.code != 200 {
		t.Fatalf("If-None-Match another tag: %d", r.code)
	}
	r := do(t, "GET", url, "alice", "Range", "bytes=4-6")
	if r.code != http.StatusPartialContent || string(r.body) != "1,2" || r.header.Get("Content-Range") != fmt.Sprintf("bytes 4-6/%d", len(body)) {
		t.Fatalf("Range: %d %q %v", r.code, r.body, r.header)
	}
	// Several ranges: a multipart answer, each part read from the blob.
	r = do(t, "GET", url, "alice", "Range", "bytes=0-2,8-10")
	mt, params, err := mime.ParseMediaType(r.header.Get("Content-Type"))
	if r.code != http.StatusPartialContent || err != nil || mt != "multipart/byteranges" {
		t.Fatalf("ranges: %d %v %v", r.code, r.header, err)
	}
	mr := multipart.NewReader(bytes.NewReader(r.body), params["boundary"])
	var parts []string
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p)
		parts = append(parts, p.Header.Get("Content-Range")+"="+string(b))
	}
	if want := fmt.Sprintf("[bytes 0-2/%d=a,b bytes 8-10/%d=3,4]", len(body), len(body)); fmt.Sprint(parts) != want {
		t.Fatalf("parts %v, want %s", parts, want)
	}
	h := do(t, "HEAD", url, "alice")
	if h.code != 200 || len(h.body) != 0 || h.header.Get("Content-Length") != fmt.Sprint(len(body)) || h.header.Get("ETag") != etag {
		t.Fatalf("HEAD: %d %v", h.code, h.header)
	}
	// A HEAD with a byte range is answered from the row too.
	if h := do(t, "HEAD", url, "alice", "Range", "bytes=0-0,2-3"); h.code != http.StatusPartialContent {
		t.Fatalf("HEAD with ranges: %d", h.code)
	}
	// A download without a name is named by its id and type.
	if d := full.header.Get("Content-Disposition"); d != `attachment; filename=`+m.ID+`.csv` {
		t.Fatalf("Content-Disposition %q", d)
	}
}

// TestHandlerHeadersGolden pins every header of the responses for a few
// kinds of artifact (testdata/headers.golden; -update rewrites it).
func TestHandlerHeadersGolden(t *testing.T) {
	t.Parallel()
	s, _ := setup(t, Options{})
	base := serveHTTP(t, s)
	var out strings.Builder
	for _, tc := range []struct {
		m    Meta
		body string
	}{
		{Meta{ContentType: "image/png", Kind: "card_png", Name: "usage.png"}, "\x89PNG fake"},
		{Meta{ContentType: "image/svg+xml", Kind: "card_svg", Name: "usage.svg"}, "<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>"},
		{Meta{ContentType: "text/csv; charset=utf-8", Kind: "query_result", Name: "tools by latency.csv"}, "tool,p95\nbash,12\n"},
		{Meta{ContentType: "application/json", Kind: "query_result", Name: "résumé \"q\".json"}, `{"rows":[]}`},
		{Meta{ContentType: "text/html", Kind: "report", Name: "report.html"}, "<script>alert(1)</script>"},
	} {
		m := mustPut(t, s, "alice", tc.m, []byte(tc.body))
		for _, method := range []string{"GET", "HEAD"} {
			r := do(t, method, base+"/artifacts/"+m.ID, "alice")
			fmt.Fprintf(&out, "%s %s (%s) -> %d\n", method, tc.m.Name, tc.m.ContentType, r.code)
			writeHeaders(&out, r.header)
		}
	}
	r := do(t, "GET", base+"/artifacts/"+strings.Repeat("0", IDLen), "alice")
	fmt.Fprintf(&out, "GET missing -> %d\n", r.code)
	writeHeaders(&out, r.header)
	fmt.Fprintf(&out, "  body: %s", r.body)

	golden := filepath.Join("testdata", "headers.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if out.String() != string(want) {
		t.Fatalf("headers differ from %s (go test -update rewrites it):\n%s", golden, out.String())
	}
}

func writeHeaders(w io.Writer, h http.Header) {
	var names []string
	for k := range h {
		if k != "Date" {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	for _, k := range names {
		fmt.Fprintf(w, "  %s: %s\n", k, strings.Join(h[k], ", "))
	}
}
