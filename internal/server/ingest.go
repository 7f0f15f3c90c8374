package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/activitybi/activitybi/internal/event"
	"github.com/activitybi/activitybi/internal/spool"
)

// Limits of POST /v1/events and /v1/insights. A request past either gets
// 413 and nothing of it is logged.
const (
	MaxIngestBody    = 16 << 20 // bytes of one request body
	MaxIngestRecords = 10_000   // records in one request
	// retryAfter is the Retry-After (seconds) of a 429: the uploader
	// commits a batch every few hundred milliseconds when it keeps up.
	retryAfter = 1
)

// IngestResult is the body of a /v1/events or /v1/insights response.
type IngestResult struct {
	Accepted   int            `json:"accepted"`
	Duplicates int            `json:"duplicates"`
	Rejected   int            `json:"rejected"`
	Results    []RecordResult `json:"results"`
}

// RecordResult is the outcome of one record, in request order.
type RecordResult struct {
	Index  int    `json:"index"`
	ID     string `json:"id,omitempty"`
	Status string `json:"status"` // accepted, duplicate, rejected
	Error  string `json:"error,omitempty"`
}

// ingestRecords reads the body of an ingest request into raw records:
// NDJSON (application/x-ndjson, application/jsonl) or a JSON array
// (application/json; a single object is one record). It writes the error
// response itself and returns ok=false when the request cannot be read.
//
// The records are sub-slices of *buf, into which the body is read; the
// caller gives buf back to the pool once it has answered (nothing of a
// request outlives it: decoding copies strings, encoding copies into the
// spool's own buffer).
func ingestRecords(w http.ResponseWriter, r *http.Request, buf *[]byte) (recs [][]byte, ok bool) {
	if r.URL.Query().Has("customer") || r.Header.Get("X-Activitybi-Customer") != "" {
		writeJSON(w, http.StatusBadRequest, errBody("a customer cannot be named in a request; it is the bearer token's customer"))
		return nil, false
	}
	body, err := readBody(http.MaxBytesReader(w, r.Body, MaxIngestBody), r.ContentLength, (*buf)[:0])
	*buf = body
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeJSON(w, http.StatusRequestEntityTooLarge, errBody(fmt.Sprintf("request body over %d bytes: send smaller batches", MaxIngestBody)))
			return nil, false
		}
		writeJSON(w, http.StatusBadRequest, errBody("reading the body: "+err.Error()))
		return nil, false
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	trimmed := bytes.TrimSpace(body)
	switch ct {
	case "application/json":
	case "application/x-ndjson", "application/jsonl", "application/ndjson", "application/jsonlines", "text/plain":
	case "":
		if len(trimmed) > 0 && trimmed[0] == '[' {
			ct = "application/json"
		}
	default:
		writeJSON(w, http.StatusUnsupportedMediaType, errBody("Content-Type must be application/x-ndjson (one JSON object per line) or application/json (an array of objects), not "+ct))
		return nil, false
	}
	if len(trimmed) == 0 {
		writeJSON(w, http.StatusBadRequest, errBody("the body holds no records"))
		return nil, false
	}
	tooMany := func() {
		writeJSON(w, http.StatusRequestEntityTooLarge, errBody(fmt.Sprintf("more than %d records in one request; the limit is %d: send smaller batches", MaxIngestRecords, MaxIngestRecords)))
	}
	// Both splits stop at MaxIngestRecords+1 records: a 16 MiB body of tiny
	// values ("[1,1,...]" or "1\n1\n...") split in full made ~8 million
	// records and hundreds of MiB before the limit was checked (found in
	// review, session 8).
	if ct == "application/json" {
		if trimmed[0] == '{' {
			recs = [][]byte{trimmed}
		} else {
			var ok bool
			if recs, ok = splitJSONArray(w, trimmed); !ok {
				return nil, false
			}
			if len(recs) > MaxIngestRecords {
				tooMany()
				return nil, false
			}
		}
	} else {
		// Lines are sub-slices of body, which stays alive and unchanged
		// (a bufio.Scanner would reuse its buffer under them). Counting
		// the lines first sizes recs once (a newline is one SIMD scan).
		recs = make([][]byte, 0, min(bytes.Count(body, []byte{'\n'})+1, MaxIngestRecords+1))
		for rest := body; len(rest) > 0; {
			var line []byte
			if i := bytes.IndexByte(rest, '\n'); i >= 0 {
				line, rest = rest[:i], rest[i+1:]
			} else {
				line, rest = rest, nil
			}
			if line = bytes.TrimSpace(line); len(line) > 0 {
				if len(recs) == MaxIngestRecords {
					tooMany()
					return nil, false
				}
				recs = append(recs, line)
			}
		}
	}
	return recs, true
}

// splitJSONArray returns the elements of the JSON array body, at most
// MaxIngestRecords+1 of them (the caller refuses more), or answers 400.
func splitJSONArray(w http.ResponseWriter, body []byte) ([][]byte, bool) {
	bad := func(err error) ([][]byte, bool) {
		writeJSON(w, http.StatusBadRequest, errBody("the body is not a JSON array of objects: "+err.Error()))
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil {
		return bad(err)
	} else if d, ok := tok.(json.Delim); !ok || d != '[' {
		return bad(fmt.Errorf("it starts with %v, not [", tok))
	}
	var recs [][]byte
	for dec.More() {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return bad(err)
		}
		recs = append(recs, raw)
		if len(recs) > MaxIngestRecords {
			return recs, true
		}
	}
	if _, err := dec.Token(); err != nil { // the closing ]
		return bad(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return bad(errors.New("data after the array"))
	}
	return recs, true
}

func errBody(msg string) map[string]any { return map[string]any{"error": msg} }

// ingestSource is the _source of records posted to the API: "api", or the
// source named by ?source= (the remote edge ships "mcp" events).
func ingestSource(w http.ResponseWriter, r *http.Request) (string, bool) {
	src := r.URL.Query().Get("source")
	if src == "" {
		return "api", true
	}
	if !event.ValidSource(src) {
		writeJSON(w, http.StatusBadRequest, errBody(fmt.Sprintf("unknown source %q (known: %v)", src, event.Sources())))
		return "", false
	}
	return src, true
}

// writeIngest answers an ingest request from the per-record outcomes, or
// from the append error that logged none of them.
func writeIngest(w http.ResponseWriter, logged []Logged, appendErr error) {
	if appendErr != nil {
		var big *spool.BatchTooLargeError
		if errors.As(appendErr, &big) {
			writeJSON(w, http.StatusRequestEntityTooLarge, errBody(fmt.Sprintf(
				"%d records in one request is more than the server's spool holds (spool.max_pending %d); send smaller batches",
				big.Records, big.Limit)))
			return
		}
		if errors.Is(appendErr, spool.ErrBackpressure) {
			w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
			writeJSON(w, http.StatusTooManyRequests, errBody(appendErr.Error()))
			return
		}
		writeJSON(w, http.StatusServiceUnavailable, errBody(appendErr.Error()))
		return
	}
	res := IngestResult{Results: make([]RecordResult, len(logged))}
	for i, l := range logged {
		rr := RecordResult{Index: i, ID: l.ID}
		switch {
		case l.Err != nil:
			rr.Status, rr.Error = "rejected", l.Err.Error()
			res.Rejected++
		case l.Duplicate:
			rr.Status = "duplicate"
			res.Duplicates++
		default:
			rr.Status = "accepted"
			res.Accepted++
		}
		res.Results[i] = rr
	}
	code := http.StatusOK
	if res.Accepted == 0 && res.Duplicates == 0 {
		code = http.StatusUnprocessableEntity
	}
	// What writeJSON would write, byte for byte (FuzzAppendIngestResult),
	// without reflection: one result per record makes it a per-event cost.
	buf := answerBuffers.get()
	defer answerBuffers.put(buf)
	*buf = appendIngestResult((*buf)[:0], &res)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(*buf)
}

// events serves POST /v1/events.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	ingest(s, w, r, event.DecodeInput, logEventBatch)
}

// ingest serves an ingest route: records decoded one by one, the good ones
// logged for the token's customer in one spool write, a result per record.
func ingest[T any](s *Server, w http.ResponseWriter, r *http.Request, decode func([]byte) (T, error),
	log func(Appender, *RecentIDs, []T, event.Defaults) ([]Logged, error)) {
	customer, ok := s.bearer(w, r)
	if !ok {
		return
	}
	src, ok := ingestSource(w, r)
	if !ok {
		return
	}
	body := bodyBuffers.get()
	defer bodyBuffers.put(body)
	recs, ok := ingestRecords(w, r, body)
	if !ok {
		return
	}
	good, idx, out := decodeRecords(recs, decode)
	if len(good) > 0 {
		d := event.Defaults{Customer: customer, Source: src, Now: s.opts.Now}
		var room func(error) bool
		if a, ok := s.opts.Appender.(interface{ HasRoom(n int) bool }); ok {
			room = func(refused error) bool {
				// The refused append carried the records that were not
				// duplicates: ask for room for those, not for the request.
				n := len(good)
				var bp *spool.BackpressureError
				if errors.As(refused, &bp) && bp.Records > 0 {
					n = bp.Records
				}
				return a.HasRoom(n)
			}
		}
		logged, err := s.wait.do(r.Context(), len(*body), room, func() ([]Logged, error) {
			return log(s.opts.Appender, s.recent, good, d)
		})
		if err != nil {
			writeIngest(w, nil, err)
			return
		}
		for j, l := range logged {
			out[idx[j]] = l
		}
	}
	writeIngest(w, out, nil)
}

// decodeRecords decodes every record; it returns those that decoded, their
// indexes in recs, and a result slice holding the decode errors of the rest.
func decodeRecords[T any](recs [][]byte, decode func([]byte) (T, error)) (good []T, idx []int, out []Logged) {
	out = make([]Logged, len(recs))
	good, idx = make([]T, 0, len(recs)), make([]int, 0, len(recs))
	for i, rec := range recs {
		v, err := decode(rec)
		if err != nil {
			out[i].Err = err
			continue
		}
		good = append(good, v)
		idx = append(idx, i)
	}
	return good, idx, out
}

// nowOr is the server's clock.
func (o *Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}
