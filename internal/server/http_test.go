package server

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/activitybi/activitybi/internal/event"
	"github.com/activitybi/activitybi/internal/spool"
	"github.com/activitybi/activitybi/internal/upload"
)

// httpBundle is a core HTTP server on loopback with a real spool and a
// token table: tokA is customer alice's, tokB bob's.
type httpBundle struct {
	url  string
	dir  string
	tool *toolBundle // for records()
	srv  *Server
}

const (
	tokA = "token-for-alice"
	tokB = "token-for-bob"
)

func setupHTTP(t *testing.T, spoolOpts spool.Options, with ...func(*Options)) *httpBundle {
	t.Helper()
	dir := t.TempDir()
	spoolOpts.Dir = dir
	w, err := spool.Open(spoolOpts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	tok, _ := NewToken()
	verify := func(tk string) (Principal, error) {
		switch tk {
		case tokA:
			return Principal{Customer: "alice", TokenID: "a"}, nil
		case tokB:
			return Principal{Customer: "bob", TokenID: "b"}, nil
		}
		return Principal{}, errors.New("unknown token")
	}
	opts := Options{Addr: "127.0.0.1:0", Registry: prometheus.NewRegistry(), Warehouse: tableQuerier{},
		Uploader: func() upload.Status { return upload.Status{Started: true} }, AdminToken: tok,
		Appender: w, VerifyToken: verify}
	for _, f := range with {
		f(&opts)
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	addr, err := s.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return &httpBundle{url: "http://" + addr.String(), dir: dir, tool: &toolBundle{dir: dir}, srv: s}
}

func (b *httpBundle) post(t *testing.T, path, token, ctype string, body []byte) (int, http.Header, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.url+path, bytes.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, out
}

func TestEventsEndpoint(t *testing.T) {
	t.Parallel()
	b := setupHTTP(t, spool.Options{})
	body := `{"activity":"called_tool","feature_json":{"tool":"Bash"},"activity_id":"e1"}
{"activity":"NotAnActivity"}

{"activity":"completed_response","customer":"bob"}
{"activity":"called_tool","activity_id":"e1"}
`
	code, _, out := b.post(t, "/v1/events", tokA, "application/x-ndjson", []byte(body))
	if code != http.StatusOK {
		t.Fatalf("HTTP %d: %s", code, out)
	}
	var res IngestResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 1 || res.Rejected != 2 || res.Duplicates != 1 || len(res.Results) != 4 {
		t.Fatalf("result = %s", out)
	}
	if r := res.Results[1]; r.Status != "rejected" || !strings.Contains(r.Error, "activity") {
		t.Errorf("bad activity: %+v", r)
	}
	if r := res.Results[2]; r.Status != "rejected" || !strings.Contains(r.Error, "customer") {
		t.Errorf("a record naming a customer must be refused: %+v", r)
	}
	// A JSON array, for bob, with the same id: bob's own row, not a duplicate of alice's.
	code, _, out = b.post(t, "/v1/events?source=mcp", tokB, "application/json", []byte(`[{"activity":"called_tool","activity_id":"e1"}]`))
	if code != http.StatusOK || !strings.Contains(string(out), `"accepted":1`) {
		t.Fatalf("bob: HTTP %d: %s", code, out)
	}
	recs := b.tool.records(t)["event"]
	if len(recs) != 2 {
		t.Fatalf("spool events = %v", recs)
	}
	got := map[string]string{}
	for _, r := range recs {
		e, err := event.Decode([]byte(r))
		if err != nil {
			t.Fatal(err)
		}
		got[e.Customer] = e.Source
	}
	if got["alice"] != "api" || got["bob"] != "mcp" {
		t.Fatalf("customers and sources = %v", got)
	}
}

// A large NDJSON body: every record keeps its own id and result.
func TestEventsEndpointLargeBatch(t *testing.T) {
	t.Parallel()
	b := setupHTTP(t, spool.Options{})
	const n = 5000
	var sb strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&sb, `{"activity":"called_tool","activity_id":"big-%d","feature_json":{"i":%d,"pad":"%s"}}`+"\n", i, i, strings.Repeat("p", i%200))
	}
	code, _, out := b.post(t, "/v1/events", tokA, "application/x-ndjson", []byte(sb.String()))
	if code != 200 {
		t.Fatalf("HTTP %d %.300s", code, out)
	}
	var res IngestResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatal(err)
	}
	if res.Accepted != n || res.Duplicates != 0 || res.Rejected != 0 {
		t.Fatalf("accepted %d duplicates %d rejected %d, want %d accepted", res.Accepted, res.Duplicates, res.Rejected, n)
	}
	for i, r := range res.Results {
		if r.Index != i || r.ID != fmt.Sprintf("big-%d", i) {
			t.Fatalf("result %d = %+v", i, r)
		}
	}
	recs := b.tool.records(t)["event"]
	if len(recs) != n {
		t.Fatalf("spool has %d events", len(recs))
	}
	for i, r := range recs {
		e, err := event.Decode([]byte(r))
		if err != nil || e.ActivityID != fmt.Sprintf("big-%d", i) {
			t.Fatalf("record %d: %v %s", i, err, e.ActivityID)
		}
	}
}

func TestEventsEndpointRefusals(t *testing.T) {
	t.Parallel()
	b := setupHTTP(t, spool.Options{})
	one := []byte(`{"activity":"called_tool"}`)
	many := bytes.Repeat(append(append([]byte{}, one...), '\n'), MaxIngestRecords+1)
	huge := bytes.Repeat([]byte(`{"activity":"called_tool","feature_json":{"x":"`+strings.Repeat("y", 60000)+`"}}`+"\n"), 300)
	cases := map[string]struct {
		path, token, ctype string
		body               []byte
		code               int
		want               string
	}{
		"no token":          {"/v1/events", "", "application/x-ndjson", one, 401, "token create"},
		"bad token":         {"/v1/events", "nope", "application/x-ndjson", one, 401, "unknown token"},
		"customer param":    {"/v1/events?customer=bob", tokA, "application/x-ndjson", one, 400, "customer"},
		"bad content type":  {"/v1/events", tokA, "text/csv", one, 415, "application/x-ndjson"},
		"empty":             {"/v1/events", tokA, "application/x-ndjson", nil, 400, "no records"},
		"not an array":      {"/v1/events", tokA, "application/json", []byte(`[{"a":1},`), 400, "JSON array"},
		"too many records":  {"/v1/events", tokA, "application/x-ndjson", many, 413, "limit is 10000"},
		"body too large":    {"/v1/events", tokA, "application/x-ndjson", huge, 413, "smaller batches"},
		"all rejected":      {"/v1/events", tokA, "application/x-ndjson", []byte(`{"activity":"x"}`), 422, "rejected"},
		"unknown source":    {"/v1/events?source=zzz", tokA, "application/x-ndjson", one, 400, "unknown source"},
		"insight no token":  {"/v1/insights", "", "application/x-ndjson", one, 401, "token"},
		"insight bad value": {"/v1/insights", tokA, "application/x-ndjson", []byte(`{"subject":"user","metric":"m","value":null}`), 422, "value"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			code, _, out := b.post(t, tc.path, tc.token, tc.ctype, tc.body)
			if code != tc.code || !strings.Contains(string(out), tc.want) {
				t.Fatalf("HTTP %d %s; want %d mentioning %q", code, out, tc.code, tc.want)
			}
		})
	}
	if recs := b.tool.records(t); len(recs) != 0 {
		t.Fatalf("refused requests must log nothing; spool has %d kinds", len(recs))
	}
}

// gatheredValue is the value of the unlabelled counter or gauge name in reg.
func gatheredValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			m := mf.GetMetric()[0]
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// eightEvents is an NDJSON batch of 8 events with ids prefix0..prefix7.
func eightEvents(prefix string) []byte {
	var sb strings.Builder
	for i := 0; i < 8; i++ {
		fmt.Fprintf(&sb, `{"activity":"called_tool","activity_id":"%s%d"}`+"\n", prefix, i)
	}
	return []byte(sb.String())
}

func TestEventsBackpressure(t *testing.T) {
	t.Parallel()
	const wait = 150 * time.Millisecond
	spoolReg := prometheus.NewRegistry()
	b := setupHTTP(t, spool.Options{MaxPending: 10, Metrics: spool.NewMetrics(spoolReg)}, func(o *Options) { o.IngestWait = wait })
	if code, _, out := b.post(t, "/v1/events", tokA, "", eightEvents("x")); code != 200 {
		t.Fatalf("first batch: HTTP %d %s", code, out)
	}
	// Eight new ones would take the spool past its limit of 10, and no
	// uploader makes room: after the wait, none is written.
	start := time.Now()
	code, hdr, out := b.post(t, "/v1/events", tokA, "", eightEvents("y"))
	if code != http.StatusTooManyRequests || hdr.Get("Retry-After") == "" || !strings.Contains(string(out), "retry") {
		t.Fatalf("HTTP %d Retry-After %q %s", code, hdr.Get("Retry-After"), out)
	}
	if took := time.Since(start); took < wait {
		t.Fatalf("answered 429 after %v; it should wait %v for room first", took, wait)
	}
	if n := len(b.tool.records(t)["event"]); n != 8 {
		t.Fatalf("a refused batch is not half-written: spool has %d events, want 8", n)
	}
	if got := testutil.ToFloat64(b.srv.wait.waits.WithLabelValues("refused")); got != 1 {
		t.Fatalf("refused waits = %v, want 1", got)
	}
	// While it waited (about 7 polls), it asked the spool for room rather
	// than trying the append again: only the first attempt was rejected.
	if got := gatheredValue(t, spoolReg, "activitybi_spool_backpressure_rejections_total"); got != 1 {
		t.Fatalf("spool backpressure rejections = %v, want 1", got)
	}
	// More records in one request than the spool ever holds: 413 at once,
	// not a wait and a 429 it could retry forever.
	start = time.Now()
	code, _, out = b.post(t, "/v1/events", tokA, "", append(eightEvents("z"), eightEvents("w")...))
	if code != http.StatusRequestEntityTooLarge || !strings.Contains(string(out), "smaller batches") {
		t.Fatalf("16 records against a limit of 10: HTTP %d %s", code, out)
	}
	if took := time.Since(start); took >= wait {
		t.Fatalf("the 413 took %v: it should not wait", took)
	}
}

// answer is an HTTP status and body.
type answer struct {
	code int
	out  []byte
}

// postWaiting posts body to /v1/events as alice and returns once the
// request waits at the backpressure limit; its answer comes on the channel.
func (b *httpBundle) postWaiting(t *testing.T, body []byte) <-chan answer {
	t.Helper()
	got := make(chan answer, 1)
	go func() {
		code, _, out := b.post(t, "/v1/events", tokA, "", body)
		got <- answer{code, out}
	}()
	for deadline := time.Now().Add(30 * time.Second); b.srv.wait.held() == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the request never started waiting")
		}
		select {
		case a := <-got:
			t.Fatalf("answered without waiting: HTTP %d %s", a.code, a.out)
		default:
		}
	}
	return got
}

// TestEventsBackpressureWaitsForRoom: a request that finds the spool at its
// limit is accepted once the uploader publishes a commit within the wait;
// one that would take the waiting requests past their byte budget is
// answered 429 at once.
func TestEventsBackpressureWaitsForRoom(t *testing.T) {
	t.Parallel()
	b := setupHTTP(t, spool.Options{MaxPending: 10}, func(o *Options) { o.IngestWait = time.Minute })
	if code, _, out := b.post(t, "/v1/events", tokA, "", eightEvents("x")); code != 200 {
		t.Fatalf("first batch: HTTP %d %s", code, out)
	}
	// The second request waits (nothing answers it while the spool is full).
	got := b.postWaiting(t, eightEvents("y"))
	select {
	case a := <-got:
		t.Fatalf("answered while the spool was full: HTTP %d %s", a.code, a.out)
	case <-time.After(100 * time.Millisecond):
	}
	// The uploader commits the first eight.
	segs, err := spool.ListSegments(b.dir)
	if err != nil || len(segs) != 1 {
		t.Fatalf("segments %v, %v", segs, err)
	}
	if err := spool.PublishCommitted(b.dir, map[string]spool.Committed{segs[0].ID: {Offset: segs[0].Size, Records: 8}}); err != nil {
		t.Fatal(err)
	}
	select {
	case a := <-got:
		if a.code != 200 || !strings.Contains(string(a.out), `"accepted":8`) {
			t.Fatalf("after room was made: HTTP %d %s", a.code, a.out)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the waiting request was not accepted once there was room")
	}
	if n := len(b.tool.records(t)["event"]); n != 16 {
		t.Fatalf("spool has %d events, want 16", n)
	}
	if got := testutil.ToFloat64(b.srv.wait.waits.WithLabelValues("accepted")); got != 1 {
		t.Fatalf("accepted waits = %v, want 1", got)
	}
	if h := b.srv.wait.held(); h != 0 {
		t.Fatalf("%d bytes still held after the wait", h)
	}

	// A budget smaller than one request: refused without waiting.
	small := setupHTTP(t, spool.Options{MaxPending: 10}, func(o *Options) { o.IngestWait = time.Minute; o.IngestWaitBytes = 10 })
	if code, _, out := small.post(t, "/v1/events", tokA, "", eightEvents("x")); code != 200 {
		t.Fatalf("first batch: HTTP %d %s", code, out)
	}
	start := time.Now()
	if code, _, out := small.post(t, "/v1/events", tokA, "", eightEvents("y")); code != http.StatusTooManyRequests {
		t.Fatalf("over the wait budget: HTTP %d %s, want 429", code, out)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Fatalf("over the wait budget, the 429 took %v", took)
	}
	if got := testutil.ToFloat64(small.srv.wait.waits.WithLabelValues("full")); got != 1 {
		t.Fatalf("full = %v, want 1", got)
	}
}

// TestEventsBackpressureRoomForNewRecordsOnly: a waiting request asks the
// spool for room for the records it will write, not for its duplicates.
func TestEventsBackpressureRoomForNewRecordsOnly(t *testing.T) {
	t.Parallel()
	b := setupHTTP(t, spool.Options{MaxPending: 10}, func(o *Options) { o.IngestWait = 20 * time.Second })
	if code, _, out := b.post(t, "/v1/events", tokA, "", eightEvents("x")); code != 200 {
		t.Fatalf("first batch: HTTP %d %s", code, out)
	}
	segs, err := spool.ListSegments(b.dir)
	if err != nil || len(segs) != 1 {
		t.Fatalf("segments %v, %v", segs, err)
	}
	firstEight := spool.Committed{Offset: segs[0].Size, Records: 8}
	if code, _, out := b.post(t, "/v1/events", tokA, "", []byte(`{"activity":"called_tool","activity_id":"y0"}
{"activity":"called_tool","activity_id":"y1"}`)); code != 200 {
		t.Fatalf("second batch: HTTP %d %s", code, out)
	}
	// The spool is at its limit (10). Eight known ids, one new and two
	// that fail validation: one record to write.
	got := b.postWaiting(t, append(eightEvents("x"), `{"activity":"called_tool","activity_id":"z0"}
{"activity":"NotAnActivity"}
{"activity":"NotAnActivity"}`...))
	// The uploader commits the first eight: room for 8 more, not for 9.
	if err := spool.PublishCommitted(b.dir, map[string]spool.Committed{segs[0].ID: firstEight}); err != nil {
		t.Fatal(err)
	}
	a := <-got
	if a.code != 200 || !strings.Contains(string(a.out), `"accepted":1,"duplicates":8,"rejected":2`) {
		t.Fatalf("after room for the one new record: HTTP %d %s", a.code, a.out)
	}
}

// TestIngestSplitStopsAtTheLimit: a body of millions of tiny records is
// refused with 413 without being split in full. Splitting a 16 MiB body of
// "1" records in full cost 650-850 MiB of allocations (found in review,
// session 8). Not parallel: it measures the process's allocations.
func TestIngestSplitStopsAtTheLimit(t *testing.T) {
	b := setupHTTP(t, spool.Options{})
	n := (MaxIngestBody - 16) / 2
	arr := append(append([]byte{'['}, bytes.Repeat([]byte("1,"), n-1)...), '1', ']')
	nd := bytes.Repeat([]byte("1\n"), n)
	for name, c := range map[string]struct {
		ctype string
		body  []byte
	}{"array": {"application/json", arr}, "ndjson": {"application/x-ndjson", nd}} {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		code, _, out := b.post(t, "/v1/events", tokA, c.ctype, c.body)
		runtime.ReadMemStats(&after)
		if code != http.StatusRequestEntityTooLarge || !strings.Contains(string(out), "limit is 10000") {
			t.Fatalf("%s: HTTP %d %s", name, code, out)
		}
		if mib := (after.TotalAlloc - before.TotalAlloc) >> 20; mib > 200 {
			t.Errorf("%s: %d MiB allocated to refuse a %d MiB body", name, mib, len(c.body)>>20)
		}
	}
	if recs, ok := splitJSONArray(httptest.NewRecorder(), arr); !ok || len(recs) != MaxIngestRecords+1 {
		t.Fatalf("splitJSONArray kept %d records (ok %v), want the limit + 1", len(recs), ok)
	}
}

func TestInsightsEndpoint(t *testing.T) {
	t.Parallel()
	b := setupHTTP(t, spool.Options{})
	code, _, out := b.post(t, "/v1/insights", tokB, "application/json",
		[]byte(`[{"subject":"user","metric":"prefers_language","value":"go","atom_id":"i1"},{"subject":"user","metric":"m","value":1,"customer_id":"alice"}]`))
	if code != 200 || !strings.Contains(string(out), `"accepted":1`) || !strings.Contains(string(out), `"rejected":1`) {
		t.Fatalf("HTTP %d %s", code, out)
	}
	recs := b.tool.records(t)["insight"]
	if len(recs) != 1 {
		t.Fatalf("spool insights = %v", recs)
	}
	x, err := event.DecodeInsight([]byte(recs[0]))
	if err != nil || x.Customer != "bob" || x.Source != "api" {
		t.Fatalf("insight = %+v, %v", x, err)
	}
}

// bearerTransport adds a bearer token to every request.
type bearerTransport struct{ token string }

func (b bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}

func TestMCPOverHTTP(t *testing.T) {
	t.Parallel()
	b := setupHTTP(t, spool.Options{})
	ctx := context.Background()
	connect := func(token string) (*mcp.ClientSession, error) {
		tr := &mcp.StreamableClientTransport{Endpoint: b.url + "/mcp", HTTPClient: &http.Client{Transport: bearerTransport{token}}}
		return mcp.NewClient(&mcp.Implementation{Name: "t", Version: "1"}, nil).Connect(ctx, tr, nil)
	}
	if _, err := connect("wrong"); err == nil {
		t.Fatal("a wrong token must not open a session")
	}
	for _, tk := range []string{tokA, tokB} {
		cs, err := connect(tk)
		if err != nil {
			t.Fatal(err)
		}
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "log_event", Arguments: map[string]any{"activity": "called_tool", "activity_id": "same"}})
		if err != nil || res.IsError {
			t.Fatalf("%v %v", err, res)
		}
		res, _ = cs.CallTool(ctx, &mcp.CallToolParams{Name: "log_event", Arguments: map[string]any{"activity": "called_tool", "customer": "alice"}})
		if !res.IsError {
			t.Fatal("a customer argument must be refused")
		}
		cs.Close()
	}
	recs := b.tool.records(t)["event"]
	custs := map[string]int{}
	for _, r := range recs {
		e, _ := event.Decode([]byte(r))
		custs[e.Customer]++
	}
	if len(recs) != 2 || custs["alice"] != 1 || custs["bob"] != 1 {
		t.Fatalf("each token logs as its own customer: %v", custs)
	}
}

func TestListenNonLoopbackNeedsTLS(t *testing.T) {
	t.Parallel()
	tok, _ := NewToken()
	base := Options{Addr: "0.0.0.0:0", Registry: prometheus.NewRegistry(), Warehouse: tableQuerier{}, AdminToken: tok}
	if _, err := New(base); err == nil || !strings.Contains(err.Error(), "TLS") {
		t.Fatalf("a non-loopback address without TLS must be refused: %v", err)
	}
	dir := t.TempDir()
	certFile, keyFile := writeSelfSigned(t, dir)
	o := base
	o.TLSCert = certFile
	if _, err := New(o); err == nil {
		t.Fatal("a certificate without a key must be refused")
	}
	o.TLSKey = keyFile
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	addr, err := s.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	_, port, _ := net.SplitHostPort(addr.String())
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := hc.Get("https://127.0.0.1:" + port + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil {
		t.Fatalf("HTTPS healthz: %d tls=%v", resp.StatusCode, resp.TLS != nil)
	}
}

func writeSelfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "activitybi-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return certFile, keyFile
}

func TestSocketDirMustBePrivate(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "shared")
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o777) // umask
	if _, err := listenSocket(filepath.Join(dir, "core.sock")); err == nil || !strings.Contains(err.Error(), "writable by no one else") {
		t.Fatalf("a world-writable socket directory must be refused: %v", err)
	}
	c := &http.Client{Transport: socketTransport(filepath.Join(dir, "core.sock"))}
	if _, err := c.Get("http://x/healthz"); err == nil || !strings.Contains(err.Error(), "writable by no one else") {
		t.Fatalf("a client must not dial into a world-writable directory: %v", err)
	}
}
