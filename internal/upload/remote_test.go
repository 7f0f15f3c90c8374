package upload

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/activitybi/activitybi/internal/event"
	"github.com/activitybi/activitybi/internal/spool"
	"github.com/activitybi/activitybi/internal/warehouse"
)

const fakeToken = "abi_test_secret"

// fakeServer is a loopback activitybi ingest API: it decodes records as
// the real server does (event.DecodeInput, event.DecodeInsightInput),
// refuses a customer in a record, deduplicates on the id like the
// warehouse's primary key, and records every request.
type fakeServer struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	token    string
	faults   []int             // status codes for the next requests, in turn; negative: answered as a proxy would (HTML body)
	reject   map[string]string // id -> reason: answered "rejected"
	events   map[string]event.Input
	insights map[string]event.InsightInput
	received map[string]int // id -> times it arrived (any status)
	requests []fakeRequest
	problems []string // protocol violations by the client
}

type fakeRequest struct {
	path, source string
	records      int
	status       int
	at           time.Time
}

func newFakeServer(t *testing.T) *fakeServer {
	f := &fakeServer{t: t, token: fakeToken, reject: map[string]string{}, events: map[string]event.Input{},
		insights: map[string]event.InsightInput{}, received: map[string]int{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeServer) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	req := fakeRequest{path: r.URL.Path, source: r.URL.Query().Get("source"), at: time.Now()}
	defer func() { f.requests = append(f.requests, req) }()
	reply := func(code int, v any) {
		req.status = code
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(v)
	}
	body, _ := io.ReadAll(r.Body)
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 16<<20)
	var lines [][]byte
	for sc.Scan() {
		lines = append(lines, append([]byte(nil), sc.Bytes()...))
	}
	req.records = len(lines)
	if r.Header.Get("Authorization") != "Bearer "+f.token {
		reply(http.StatusUnauthorized, map[string]string{"error": "unknown token"})
		return
	}
	if len(f.faults) > 0 {
		code := f.faults[0]
		f.faults = f.faults[1:]
		if code < 0 {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(-code)
			fmt.Fprintf(w, "<html><body><h1>%d Bad Request</h1>nginx</body></html>", -code)
			return
		}
		if code == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
		reply(code, map[string]string{"error": "injected " + strconv.Itoa(code)})
		return
	}
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-ndjson" {
		f.problems = append(f.problems, fmt.Sprintf("%s with Content-Type %q", r.Method, r.Header.Get("Content-Type")))
	}
	if req.source != event.SourceMCP {
		f.problems = append(f.problems, fmt.Sprintf("source %q", req.source))
	}
	type result struct {
		Index  int    `json:"index"`
		ID     string `json:"id,omitempty"`
		Status string `json:"status"`
		Error  string `json:"error,omitempty"`
	}
	var results []result
	for i, line := range lines {
		for _, k := range []string{`"customer"`, `"customer_id"`, `"_source"`, `"_received_at"`} {
			if bytes.Contains(line, []byte(k)) {
				f.problems = append(f.problems, "a record carries "+k+": "+string(line))
			}
		}
		var id string
		var err error
		switch r.URL.Path {
		case "/v1/events":
			var in event.Input
			if in, err = event.DecodeInput(line); err == nil {
				id = in.ActivityID
				if _, ok := f.events[id]; !ok {
					f.events[id] = in
				}
			}
		case "/v1/insights":
			var in event.InsightInput
			if in, err = event.DecodeInsightInput(line); err == nil {
				id = in.AtomID
				if _, ok := f.insights[id]; !ok {
					f.insights[id] = in
				}
			}
		default:
			reply(http.StatusNotFound, map[string]string{"error": "no such path"})
			return
		}
		res := result{Index: i, ID: id}
		switch {
		case err != nil:
			f.problems = append(f.problems, "undecodable record: "+err.Error())
			res.Status, res.Error = "rejected", err.Error()
		case f.reject[id] != "":
			delete(f.events, id)
			delete(f.insights, id)
			res.Status, res.Error = "rejected", f.reject[id]
		case f.received[id] > 0:
			res.Status = "duplicate"
		default:
			res.Status = "accepted"
		}
		if id != "" {
			f.received[id]++
		}
		results = append(results, res)
	}
	reply(http.StatusOK, map[string]any{"results": results})
}

func (f *fakeServer) set(fn func(f *fakeServer)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeServer) snapshot() (events map[string]event.Input, insights map[string]event.InsightInput, received map[string]int, reqs []fakeRequest) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.problems) > 0 {
		f.t.Errorf("the client broke the protocol: %q", f.problems)
	}
	events = make(map[string]event.Input, len(f.events))
	for k, v := range f.events {
		events[k] = v
	}
	insights = make(map[string]event.InsightInput, len(f.insights))
	for k, v := range f.insights {
		insights[k] = v
	}
	received = make(map[string]int, len(f.received))
	for k, v := range f.received {
		received[k] = v
	}
	return events, insights, received, append([]fakeRequest(nil), f.requests...)
}

// remoteBundle is a spool and state dir shipped to a fake server.
type remoteBundle struct {
	spool, state string
	fake         *fakeServer
}

func remoteSetup(t *testing.T) *remoteBundle {
	t.Helper()
	dir := t.TempDir()
	return &remoteBundle{spool: filepath.Join(dir, "spool"), state: filepath.Join(dir, "remote"), fake: newFakeServer(t)}
}

// uploader returns a new RemoteSink and an Uploader over the bundle's
// spool, as a restarted edge would make them.
func (b *remoteBundle) uploader(t *testing.T, edit func(o *RemoteOptions)) (*Uploader, *RemoteSink) {
	t.Helper()
	o := RemoteOptions{URL: b.fake.srv.URL, Token: fakeToken, StateDir: b.state}
	if edit != nil {
		edit(&o)
	}
	sink, err := NewRemoteSink(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sink.Close)
	u, err := New(Options{SpoolDir: b.spool, Warehouse: sink,
		RetryMin: time.Millisecond, RetryMax: 20 * time.Millisecond, PollInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return u, sink
}

func mcpEventPayload(t testing.TB, id string, i int) []byte {
	t.Helper()
	ts := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).Add(time.Duration(i) * time.Millisecond)
	rev := -0.25
	ev, err := event.Normalize(event.Input{ActivityID: id, TS: &ts, Activity: "called_tool",
		Features: []byte(`{"tool":"Bash","html":"<b>&</b>","n":` + strconv.Itoa(i) + `}`), RevenueImpact: &rev, Link: "https://x.test/" + id},
		event.Defaults{Customer: "laptop-user", Source: event.SourceMCP})
	if err != nil {
		t.Fatal(err)
	}
	b, err := event.Marshal(&ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mcpInsightPayload(t testing.TB, id string) []byte {
	t.Helper()
	x, err := event.NormalizeInsight(event.InsightInput{AtomID: id, Subject: "user", Metric: "prefers_language",
		Value: []byte(`{"lang":"go","why":"<fast>"}`)}, event.Defaults{Customer: "laptop-user", Source: event.SourceMCP})
	if err != nil {
		t.Fatal(err)
	}
	b, err := event.MarshalInsight(&x)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// spoolWriter opens a writer on dir that the test closes (or not).
func spoolWriter(t *testing.T, dir string) *spool.Writer {
	t.Helper()
	w, err := spool.Open(spool.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func appendEvents(t *testing.T, w *spool.Writer, prefix string, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := w.Append(KindEvent, mcpEventPayload(t, prefix+strconv.Itoa(i), i)); err != nil {
			t.Fatal(err)
		}
	}
}

func appendInsights(t *testing.T, w *spool.Writer, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if err := w.Append(KindInsight, mcpInsightPayload(t, id)); err != nil {
			t.Fatal(err)
		}
	}
}

func drainCtx(t *testing.T, u *Uploader, d time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return u.Drain(ctx)
}

// checkOnce fails unless every id in want arrived exactly once.
func checkOnce(t *testing.T, received map[string]int, want []string) {
	t.Helper()
	for _, id := range want {
		if received[id] != 1 {
			t.Errorf("%s arrived %d times, want 1", id, received[id])
		}
	}
}

func ids(prefix string, from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, prefix+strconv.Itoa(i))
	}
	return out
}

// TestRemoteDeliversEverythingOnce: events and insights in an open segment
// arrive in the shape the API takes, without customer fields, split into
// requests under the limit; the offsets are persisted, and a restarted
// uploader and sink ship only what is new.
func TestRemoteDeliversEverythingOnce(t *testing.T) {
	t.Parallel()
	b := remoteSetup(t)
	w := spoolWriter(t, b.spool) // stays open: only the offsets keep records from being re-sent
	appendEvents(t, w, "ev-", 0, 25)
	appendInsights(t, w, "atom-1", "atom-2")
	appendEvents(t, w, "ev-", 25, 30)

	u, _ := b.uploader(t, func(o *RemoteOptions) { o.MaxRequestRecords = 7 })
	if err := drainCtx(t, u, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	events, insights, received, reqs := b.fake.snapshot()
	if len(events) != 30 || len(insights) != 2 {
		t.Fatalf("server has %d events and %d insights, want 30 and 2", len(events), len(insights))
	}
	checkOnce(t, received, append(ids("ev-", 0, 30), "atom-1", "atom-2"))
	for _, r := range reqs {
		if r.records > 7 {
			t.Errorf("a request of %d records; the limit is 7", r.records)
		}
	}
	if len(reqs) < 5 {
		t.Errorf("%d requests for 32 records at 7 a request", len(reqs))
	}
	// The record travels as stored: ts, features byte for byte, revenue, link.
	in := events["ev-3"]
	if got, want := in.TS.UTC(), time.Date(2026, 1, 2, 3, 4, 5, 3e6, time.UTC); !got.Equal(want) {
		t.Errorf("ts %s, want %s", got, want)
	}
	if string(in.Features) != `{"tool":"Bash","html":"<b>&</b>","n":3}` || in.RevenueImpact == nil || *in.RevenueImpact != -0.25 ||
		in.Link != "https://x.test/ev-3" || in.Customer != "" {
		t.Errorf("event arrived as %+v (features %s)", in, in.Features)
	}
	if x := insights["atom-2"]; x.Subject != "user" || x.Metric != "prefers_language" || string(x.Value) != `{"lang":"go","why":"<fast>"}` || x.TS == nil {
		t.Errorf("insight arrived as %+v", x)
	}
	if st := u.Status(); st.Inserted != 30 || st.InsightsInserted != 2 || st.Quarantined != 0 {
		t.Errorf("status %+v", st)
	}

	// The offsets are on disk, written atomically.
	raw, err := os.ReadFile(filepath.Join(b.state, RemoteOffsetsFile))
	if err != nil {
		t.Fatal(err)
	}
	var of offsetsFile
	if err := json.Unmarshal(raw, &of); err != nil || len(of.Offsets) != 1 || of.Offsets[0].Records != 32 || of.Offsets[0].Closed {
		t.Fatalf("offsets.json = %s (%v)", raw, err)
	}
	if fi, err := os.Stat(filepath.Join(b.state, RemoteOffsetsFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("offsets.json mode: %v %v", fi, err)
	}

	// A restarted edge (new sink, new uploader) resumes from the file.
	appendEvents(t, w, "ev-", 30, 35)
	u2, _ := b.uploader(t, nil)
	if err := drainCtx(t, u2, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := drainCtx(t, u2, 30*time.Second); err != nil { // the closed segment is committed and deleted
		t.Fatal(err)
	}
	events, _, received, _ = b.fake.snapshot()
	if len(events) != 35 {
		t.Fatalf("server has %d events, want 35", len(events))
	}
	checkOnce(t, received, append(ids("ev-", 0, 35), "atom-1", "atom-2"))
	if st := u2.Status(); st.Inserted != 5 {
		t.Errorf("restarted uploader inserted %d, want 5", st.Inserted)
	}
	if segs, _ := spool.ListSegments(b.spool); len(segs) != 0 {
		t.Errorf("%d segments left after commit", len(segs))
	}
	raw, _ = os.ReadFile(filepath.Join(b.state, RemoteOffsetsFile))
	if err := json.Unmarshal(raw, &of); err != nil || len(of.Offsets) != 0 {
		t.Errorf("offsets of the deleted segment were not forgotten: %s", raw)
	}
}

// TestRemoteRetriesUntilServerRecovers: 503s and 502s are retried with
// the records kept; once the server answers, everything arrives once.
func TestRemoteRetriesUntilServerRecovers(t *testing.T) {
	t.Parallel()
	b := remoteSetup(t)
	b.fake.set(func(f *fakeServer) { f.faults = []int{503, 503, 502, 503} })
	w := spoolWriter(t, b.spool)
	appendEvents(t, w, "r-", 0, 10)
	appendInsights(t, w, "r-atom")
	w.Close()

	u, _ := b.uploader(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- u.Run(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		// Delivered as far as the uploader knows (the server has them by then).
		st := u.Status()
		if st.Inserted == 10 && st.InsightsInserted == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not delivered: status %+v", st)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	_, _, received, reqs := b.fake.snapshot()
	checkOnce(t, received, append(ids("r-", 0, 10), "r-atom"))
	if n := len(reqs); n < 6 {
		t.Errorf("%d requests: the four failures were not retried", n)
	}
	if st := u.Status(); st.Inserted != 10 || st.InsightsInserted != 1 || st.Quarantined != 0 {
		t.Errorf("status %+v", st)
	}
}

// TestRemoteRejectedRecordIsQuarantined: the records the server rejects
// end up in quarantine.ndjson with the reason; the others are delivered,
// and nothing is quarantined twice.
func TestRemoteRejectedRecordIsQuarantined(t *testing.T) {
	t.Parallel()
	b := remoteSetup(t)
	b.fake.set(func(f *fakeServer) {
		f.reject["q-6"] = "ts: is in the future"
		f.reject["q-bad-atom"] = "value: too large"
	})
	w := spoolWriter(t, b.spool)
	appendEvents(t, w, "q-", 0, 12)
	appendInsights(t, w, "q-atom", "q-bad-atom")
	w.Close()

	u, _ := b.uploader(t, nil)
	if err := drainCtx(t, u, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	events, insights, _, _ := b.fake.snapshot()
	if len(events) != 11 || len(insights) != 1 {
		t.Fatalf("server has %d events and %d insights, want 11 and 1", len(events), len(insights))
	}
	if _, ok := events["q-6"]; ok {
		t.Fatal("the rejected event is stored")
	}
	lines := readQuarantine(t, b.state)
	if len(lines) != 2 {
		t.Fatalf("quarantine has %d lines, want 2: %+v", len(lines), lines)
	}
	byKind := map[string]quarantineLine{}
	for _, l := range lines {
		byKind[l.Kind] = l
	}
	if l := byKind[KindEvent]; !strings.Contains(l.Reason, "ts: is in the future") || !strings.Contains(l.Raw, `"activity_id":"q-6"`) ||
		l.Segment == "" || l.At.IsZero() {
		t.Errorf("event quarantine line %+v", l)
	}
	if l := byKind[KindInsight]; !strings.Contains(l.Reason, "value: too large") || !strings.Contains(l.Raw, `"atom_id":"q-bad-atom"`) {
		t.Errorf("insight quarantine line %+v", l)
	}
	// The raw record is the spool's, so it can be replayed: it decodes.
	if _, err := event.Decode([]byte(byKind[KindEvent].Raw)); err != nil {
		t.Errorf("quarantined raw does not decode: %v", err)
	}
	if st := u.Status(); st.Quarantined != 2 {
		t.Errorf("status %+v", st)
	}
	if fi, err := os.Stat(filepath.Join(b.state, RemoteQuarantineFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("quarantine file mode: %v %v", fi, err)
	}

	// The same records quarantined again (a retry after a crash before the
	// offsets were written) are not appended twice.
	sink, err := NewRemoteSink(RemoteOptions{URL: b.fake.srv.URL, Token: fakeToken, StateDir: b.state})
	if err != nil {
		t.Fatal(err)
	}
	q := warehouse.QuarantineRecord{Segment: lines[0].Segment, Offset: lines[0].Offset, Kind: lines[0].Kind, Reason: "again", Raw: []byte(lines[0].Raw)}
	res, err := sink.Load(context.Background(), &warehouse.Batch{Quarantine: []warehouse.QuarantineRecord{q}})
	if err != nil || res.Quarantined != 0 {
		t.Fatalf("re-quarantine: %+v %v", res, err)
	}
	if n := len(readQuarantine(t, b.state)); n != 2 {
		t.Errorf("quarantine has %d lines after a repeat, want 2", n)
	}
}

// TestRemoteSingleRejectionWrapsErrRecordRejected: the contract with the
// uploader, seen from Load.
func TestRemoteSingleRejectionWrapsErrRecordRejected(t *testing.T) {
	t.Parallel()
	b := remoteSetup(t)
	b.fake.set(func(f *fakeServer) { f.reject["one"] = "activity: bad" })
	sink, err := NewRemoteSink(RemoteOptions{URL: b.fake.srv.URL, Token: fakeToken, StateDir: b.state})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sink.Close)
	ev, err := event.Decode(mcpEventPayload(t, "one", 1))
	if err != nil {
		t.Fatal(err)
	}
	off := warehouse.Offset{Segment: "s1", Offset: 100, Records: 1}
	_, err = sink.Load(context.Background(), &warehouse.Batch{Events: []event.Event{ev}, Offsets: []warehouse.Offset{off}})
	if !errors.Is(err, warehouse.ErrRecordRejected) || !strings.Contains(err.Error(), "activity: bad") || !strings.Contains(err.Error(), "one") {
		t.Fatalf("Load = %v, want ErrRecordRejected naming the record and reason", err)
	}
	if offs, err := sink.Offsets(context.Background()); err != nil || len(offs) != 0 {
		t.Fatalf("offsets written for a failed batch: %v %v", offs, err)
	}
}

// TestRemoteForeign400IsRetried: a 400 that is not the server's own JSON
// error (a proxy, or --remote naming another site) says nothing about the
// records: they are re-sent, not quarantined.
func TestRemoteForeign400IsRetried(t *testing.T) {
	t.Parallel()
	b := remoteSetup(t)
	// More 400s than it takes to isolate each record: the old sink
	// quarantined both records after three requests.
	b.fake.set(func(f *fakeServer) { f.faults = []int{-400, -400, -400, -400} })
	w := spoolWriter(t, b.spool)
	appendEvents(t, w, "proxy-", 0, 2)
	w.Close()

	u, _ := b.uploader(t, nil)
	if err := drainCtx(t, u, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	_, _, received, _ := b.fake.snapshot()
	checkOnce(t, received, ids("proxy-", 0, 2))
	if st := u.Status(); st.Quarantined != 0 {
		t.Fatalf("%d records quarantined for a proxy's 400", st.Quarantined)
	}
	if _, err := os.Stat(filepath.Join(b.state, RemoteQuarantineFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("records quarantined for a proxy's 400")
	}
}

// TestRemote429HonoursRetryAfter: after a 429 with Retry-After: 1 the next
// request waits at least that long, and the records arrive once.
func TestRemote429HonoursRetryAfter(t *testing.T) {
	t.Parallel()
	b := remoteSetup(t)
	b.fake.set(func(f *fakeServer) { f.faults = []int{429} })
	w := spoolWriter(t, b.spool)
	appendEvents(t, w, "busy-", 0, 3)
	w.Close()

	u, _ := b.uploader(t, nil)
	if err := drainCtx(t, u, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	_, _, received, reqs := b.fake.snapshot()
	checkOnce(t, received, ids("busy-", 0, 3))
	if len(reqs) != 2 || reqs[0].status != 429 || reqs[1].status != 200 {
		t.Fatalf("requests %+v, want a 429 then one 200", reqs)
	}
	// Retry-After is whole seconds; the uploader alone would retry after 1 ms.
	if gap := reqs[1].at.Sub(reqs[0].at); gap < 900*time.Millisecond {
		t.Errorf("re-sent %s after the 429, want >= 1s (Retry-After)", gap)
	}
}

// TestRemoteTokenRefused: a refused token is retried (not quarantined),
// reported in the uploader's status, and shipping resumes once the token
// is good again.
func TestRemoteTokenRefused(t *testing.T) {
	t.Parallel()
	b := remoteSetup(t)
	b.fake.set(func(f *fakeServer) { f.token = "another" })
	w := spoolWriter(t, b.spool)
	appendEvents(t, w, "auth-", 0, 4)
	w.Close()

	u, _ := b.uploader(t, nil)
	if err := drainCtx(t, u, 300*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("drain with a refused token = %v, want the deadline", err)
	}
	st := u.Status()
	if !strings.Contains(st.LastError, "refuses the token") || !strings.Contains(st.LastError, "401") ||
		!strings.Contains(st.LastError, "--token") || st.Quarantined != 0 {
		t.Fatalf("status %+v", st)
	}
	if _, err := os.Stat(filepath.Join(b.state, RemoteQuarantineFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("records quarantined for a token problem")
	}
	b.fake.set(func(f *fakeServer) { f.token = fakeToken })
	if err := drainCtx(t, u, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	// At least once, not exactly once: the first drain's last request may
	// be cancelled by its deadline on the client while the server handles
	// it only after the token was fixed, so that request counts too. A
	// real server stores such a re-send once (customer, id is its key).
	_, _, received, _ := b.fake.snapshot()
	for _, id := range ids("auth-", 0, 4) {
		if received[id] < 1 {
			t.Errorf("%s never arrived", id)
		}
	}
}

// TestRemoteRequestTooLargeIsSplit: a server with lower limits (413) gets
// smaller requests.
func TestRemoteRequestTooLargeIsSplit(t *testing.T) {
	t.Parallel()
	b := remoteSetup(t)
	b.fake.set(func(f *fakeServer) { f.faults = []int{413} })
	w := spoolWriter(t, b.spool)
	appendEvents(t, w, "big-", 0, 8)
	w.Close()
	u, _ := b.uploader(t, nil)
	if err := drainCtx(t, u, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	_, _, received, reqs := b.fake.snapshot()
	checkOnce(t, received, ids("big-", 0, 8))
	if len(reqs) != 3 || reqs[0].records != 8 || reqs[1].records != 4 || reqs[2].records != 4 {
		t.Errorf("requests %+v, want 8 (413) then 4 and 4", reqs)
	}
}

func TestNewRemoteSinkValidates(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for name, o := range map[string]RemoteOptions{
		"no url":       {Token: "t", StateDir: dir},
		"ftp":          {URL: "ftp://example.com", Token: "t", StateDir: dir},
		"no host":      {URL: "https://", Token: "t", StateDir: dir},
		"query":        {URL: "https://example.com/?customer=x", Token: "t", StateDir: dir},
		"no token":     {URL: "https://example.com", StateDir: dir},
		"no state dir": {URL: "https://example.com", Token: "t"},
	} {
		if _, err := NewRemoteSink(o); err == nil {
			t.Errorf("%s: accepted %+v", name, o)
		}
	}
	s, err := NewRemoteSink(RemoteOptions{URL: "https://example.com/prefix/", Token: "t", StateDir: filepath.Join(dir, "new")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.base != "https://example.com/prefix" {
		t.Errorf("base %q", s.base)
	}
	if fi, err := os.Stat(filepath.Join(dir, "new")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("state dir: %v %v", fi, err)
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"":                              defaultRetryAfter,
		"3":                             3 * time.Second,
		"0":                             0,
		"junk":                          defaultRetryAfter,
		"86400":                         maxRetryAfter,
		"Thu, 01 Jan 2026 00:00:07 GMT": 7 * time.Second,
		"Wed, 31 Dec 2025 23:00:00 GMT": 0,
	} {
		if got := retryAfter(in, now); got != want {
			t.Errorf("retryAfter(%q) = %s, want %s", in, got, want)
		}
	}
}

func readQuarantine(t *testing.T, dir string) []quarantineLine {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, RemoteQuarantineFile))
	if err != nil {
		t.Fatal(err)
	}
	var out []quarantineLine
	for _, line := range bytes.Split(bytes.TrimSpace(raw), []byte("\n")) {
		var l quarantineLine
		if err := json.Unmarshal(line, &l); err != nil {
			t.Fatalf("quarantine line %q: %v", line, err)
		}
		out = append(out, l)
	}
	return out
}

// TestRemoteWhoAmI: the answers of GET /v1/whoami as an edge meets them: a
// current server's, an older server's (404, or a dashboard page for every
// path), a refused token, a failing server. The token goes only in the
// Authorization header; the asked ids go in the query.
func TestRemoteWhoAmI(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var answer func(w http.ResponseWriter)
	var got *http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		got = r
		answer(w)
	}))
	t.Cleanup(srv.Close)
	s, err := NewRemoteSink(RemoteOptions{URL: srv.URL + "/base/", Token: fakeToken, StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	set := func(code int, ctype, body string) {
		mu.Lock()
		defer mu.Unlock()
		answer = func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", ctype)
			w.WriteHeader(code)
			io.WriteString(w, body)
		}
	}

	set(200, "application/json", `{"customer":"alice","token_id":"aaaaaaaaaa","same_customer":["bbbbbbbbbb"]}`)
	who, err := s.WhoAmI(context.Background(), "bbbbbbbbbb", "cccccccccc")
	if err != nil || who.Customer != "alice" || who.TokenID != "aaaaaaaaaa" || len(who.SameCustomer) != 1 || who.SameCustomer[0] != "bbbbbbbbbb" {
		t.Fatalf("WhoAmI = %+v, %v", who, err)
	}
	mu.Lock()
	if got.Method != http.MethodGet || got.URL.Path != "/base/v1/whoami" || got.URL.RawQuery != "token_id=bbbbbbbbbb&token_id=cccccccccc" ||
		got.Header.Get("Authorization") != "Bearer "+fakeToken {
		t.Errorf("request %s %s %v", got.Method, got.URL, got.Header)
	}
	mu.Unlock()

	for name, tc := range map[string]struct {
		code        int
		ctype, body string
		unsupported bool
		status      int // of the *remoteError
	}{
		"older server":     {404, "text/plain", "404 page not found", true, 0},
		"dashboard page":   {200, "text/html", "<html>sign in</html>", true, 0},
		"empty customer":   {200, "application/json", `{"customer":""}`, true, 0},
		"refused token":    {401, "application/json", `{"error":"token revoked"}`, false, 401},
		"server failing":   {503, "application/json", `{"error":"busy"}`, false, 503},
		"proxy's 502 page": {502, "text/html", "<html>bad gateway</html>", false, 502},
	} {
		set(tc.code, tc.ctype, tc.body)
		_, err := s.WhoAmI(context.Background())
		var re *remoteError
		switch {
		case err == nil:
			t.Errorf("%s: accepted", name)
		case tc.unsupported != errors.Is(err, ErrWhoAmIUnsupported):
			t.Errorf("%s: %v; unsupported want %v", name, err, tc.unsupported)
		case !tc.unsupported && (!errors.As(err, &re) || re.status != tc.status):
			t.Errorf("%s: %v, want a retryable error with status %d", name, err, tc.status)
		case strings.Contains(err.Error(), fakeToken):
			t.Errorf("%s: the error shows the token: %v", name, err)
		}
	}
	srv.Close()
	var re *remoteError
	if _, err := s.WhoAmI(context.Background()); !errors.As(err, &re) || re.status != 0 || !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("unreachable server: %v", err)
	}
}
