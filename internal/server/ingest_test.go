package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/activitybi/activitybi/internal/event"
	"github.com/activitybi/activitybi/internal/spool"
)

// Requests at once, over pooled buffers: every record reaches the spool as
// its own request sent it, every answer names its own ids. A buffer given
// back while still in use would show here as a record or answer holding
// another request's bytes (and as a race under -race).
func TestEventsConcurrentRequestsKeepTheirBytes(t *testing.T) {
	t.Parallel()
	b := setupHTTP(t, spool.Options{})
	const workers, batches, perBatch = 4, 10, 300
	var wg sync.WaitGroup
	errs := make(chan error, workers*batches)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range batches {
				var body bytes.Buffer
				for i := range perBatch {
					// Sizes differ per request, so that a reused buffer
					// holds a longer or shorter leftover.
					fmt.Fprintf(&body, `{"activity":"called_tool","activity_id":"w%d-b%d-%d","feature_json":{"pad":"%s"}}`+"\n",
						w, n, i, strings.Repeat("x", (w*7+n*13+i)%50))
				}
				req, _ := http.NewRequest(http.MethodPost, b.url+"/v1/events", &body)
				req.Header.Set("Authorization", "Bearer "+tokA)
				req.Header.Set("Content-Type", "application/x-ndjson")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					errs <- err
					return
				}
				out, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				var res IngestResult
				if err := json.Unmarshal(out, &res); err != nil || resp.StatusCode != 200 {
					errs <- fmt.Errorf("HTTP %d %v: %.200s", resp.StatusCode, err, out)
					return
				}
				for i, r := range res.Results {
					if want := fmt.Sprintf("w%d-b%d-%d", w, n, i); r.ID != want || r.Status != "accepted" || r.Index != i {
						errs <- fmt.Errorf("result %d = %+v, want id %s accepted", i, r, want)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	recs := b.tool.records(t)["event"]
	if len(recs) != workers*batches*perBatch {
		t.Fatalf("spool has %d events, want %d", len(recs), workers*batches*perBatch)
	}
	seen := map[string]bool{}
	for _, r := range recs {
		e, err := event.Decode([]byte(r))
		if err != nil {
			t.Fatalf("%v: %s", err, r)
		}
		var w, n, i int
		if _, err := fmt.Sscanf(e.ActivityID, "w%d-b%d-%d", &w, &n, &i); err != nil {
			t.Fatalf("id %q: %v", e.ActivityID, err)
		}
		var f struct{ Pad string }
		if err := json.Unmarshal(e.Features, &f); err != nil || f.Pad != strings.Repeat("x", (w*7+n*13+i)%50) {
			t.Fatalf("event %s has features %s: another request's bytes", e.ActivityID, e.Features)
		}
		if seen[e.ActivityID] || e.Customer != "alice" {
			t.Fatalf("event %s: twice, or customer %q", e.ActivityID, e.Customer)
		}
		seen[e.ActivityID] = true
	}
}

// A body sent without Content-Length (chunked), larger than the first read
// buffer, is read whole.
func TestEventsChunkedBody(t *testing.T) {
	t.Parallel()
	b := setupHTTP(t, spool.Options{})
	const n = 2000 // ~150 KB, over initialBodyRead
	pr, pw := io.Pipe()
	go func() {
		for i := range n {
			fmt.Fprintf(pw, `{"activity":"called_tool","activity_id":"c-%d","feature_json":{"i":%d}}`+"\n", i, i)
		}
		pw.Close()
	}()
	status, out := postChunked(t, b.url+"/v1/events", pr)
	var res IngestResult
	if err := json.Unmarshal(out, &res); err != nil || res.Accepted != n {
		t.Fatalf("HTTP %d %v: %.300s", status, err, out)
	}
	if got := len(b.tool.records(t)["event"]); got != n {
		t.Fatalf("spool has %d events, want %d", got, n)
	}
}

// A body over MaxIngestBody sent chunked (no length to refuse up front) is
// still refused with 413 and logs nothing.
func TestEventsChunkedBodyTooLarge(t *testing.T) {
	t.Parallel()
	b := setupHTTP(t, spool.Options{})
	line := []byte(`{"activity":"called_tool","feature_json":{"x":"` + strings.Repeat("y", 60000) + `"}}` + "\n")
	pr, pw := io.Pipe()
	go func() {
		for sent := 0; sent <= MaxIngestBody; sent += len(line) {
			if _, err := pw.Write(line); err != nil {
				return // the server stopped reading
			}
		}
		pw.Close()
	}()
	status, out := postChunked(t, b.url+"/v1/events", pr)
	pr.CloseWithError(io.ErrClosedPipe)
	if status != http.StatusRequestEntityTooLarge || !strings.Contains(string(out), "smaller batches") {
		t.Fatalf("HTTP %d %s", status, out)
	}
	if recs := b.tool.records(t); len(recs) != 0 {
		t.Fatalf("spool has %d kinds of records", len(recs))
	}
}

// readBody reads all of a reader whatever length is declared: the declared
// length only sizes the first buffer.
func TestReadBody(t *testing.T) {
	t.Parallel()
	data := bytes.Repeat([]byte("0123456789"), 150_000) // 1.5 MB: past maxBodyPresize
	for _, declared := range []int64{-1, 0, int64(len(data)), MaxIngestBody} {
		for _, prefix := range [][]byte{nil, []byte("old")} {
			got, err := readBody(bytes.NewReader(data), declared, prefix)
			if err != nil || !bytes.Equal(got[len(prefix):], data) || !bytes.Equal(got[:len(prefix)], prefix) {
				t.Fatalf("declared %d, prefix %q: %d bytes, %v", declared, prefix, len(got), err)
			}
		}
	}
}

// encodeIngestResult is what writeJSON writes for res.
func encodeIngestResult(t testing.TB, res *IngestResult) []byte {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(res); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestAppendIngestResult(t *testing.T) {
	t.Parallel()
	for _, res := range []IngestResult{
		{},
		{Results: []RecordResult{}},
		{Accepted: 1, Duplicates: 1, Rejected: 1, Results: []RecordResult{
			{Index: 0, ID: "01JAAAAAAAAAAAAAAAAAAAAAAA", Status: "accepted"},
			{Index: 1, ID: "load-1-2", Status: "duplicate"},
			{Index: 2, Status: "rejected", Error: `activity: "Not<An>Activity" & more: must be verb_noun` + "\n\t\x00 é \u2028 \xff"},
		}},
	} {
		if got, want := appendIngestResult(nil, &res), encodeIngestResult(t, &res); !bytes.Equal(got, want) {
			t.Errorf("got  %s\nwant %s", got, want)
		}
	}
}

// FuzzAppendIngestResult holds the hand-written answer byte for byte equal
// to encoding/json's.
func FuzzAppendIngestResult(f *testing.F) {
	f.Add(3, 1, 0, "load-1-1", "accepted", "")
	f.Add(0, 0, 1, "", "rejected", `feature_json: "<b>" is not an object`)
	f.Add(-1, 0, 0, "\xff\xfe", "x\u2029", "\x00\x1f\"\\")
	f.Fuzz(func(t *testing.T, acc, dup, rej int, id, status, msg string) {
		res := IngestResult{Accepted: acc, Duplicates: dup, Rejected: rej, Results: []RecordResult{
			{Index: acc, ID: id, Status: status, Error: msg},
			{Index: rej, ID: msg, Status: id},
		}}
		if got, want := appendIngestResult(nil, &res), encodeIngestResult(t, &res); !bytes.Equal(got, want) {
			t.Fatalf("got  %q\nwant %q", got, want)
		}
	})
}

// postChunked POSTs body as tokA with no Content-Length (sent chunked) and
// returns the answer's status and body.
func postChunked(t *testing.T, url string, body io.Reader) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, body)
	req.ContentLength = -1 // unknown: sent chunked
	req.Header.Set("Authorization", "Bearer "+tokA)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}
