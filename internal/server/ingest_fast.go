package server

import (
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/activitybi/activitybi/internal/event"
	"github.com/activitybi/activitybi/internal/upload"
)

// The per-batch costs of POST /v1/events that do not depend on what is in
// an event: reading the body, encoding the records for the spool and the
// answer. A CPU profile of the core under `activitybi-load events-http`
// showed them, with the garbage collection their allocations caused, as a
// third of the handler (bench/mcp.md, "POST /v1/events: where the core's
// CPU goes").

// maxPooledBuffer is the largest buffer kept for reuse between requests:
// a batch of about 5,000 events of the common shape (body, spool encoding
// or answer). Larger ones, up to MaxIngestBody, are allocated per request
// and left to the garbage collector, so that a few huge requests do not
// pin their memory in the pool.
const maxPooledBuffer = 2 << 20

// initialBodyRead is the first read buffer of a body whose length the
// client did not send (chunked): it then grows as io.ReadAll's does.
const initialBodyRead = 64 << 10

// maxBodyPresize bounds what a declared Content-Length makes the core
// allocate before the bytes arrive: a length is a claim, not the data, and
// a slow client claiming MaxIngestBody must not cost 16 MiB up front. A
// larger body grows past it as it arrives.
const maxBodyPresize = 1 << 20

// bufferPool keeps buffers of one use (bodies, spool encodings, answers),
// so that each use gets back a buffer of about the size it needs.
type bufferPool struct{ p sync.Pool }

var bodyBuffers, spoolBuffers, answerBuffers bufferPool

func (bp *bufferPool) get() *[]byte {
	if b, ok := bp.p.Get().(*[]byte); ok {
		return b
	}
	return new([]byte)
}

// put gives b back for reuse unless it grew past maxPooledBuffer. Nothing
// may still refer to *b.
func (bp *bufferPool) put(b *[]byte) {
	if cap(*b) > maxPooledBuffer {
		return
	}
	*b = (*b)[:0]
	bp.p.Put(b)
}

// readBody appends all of r to dst. A declared length (Content-Length,
// which net/http holds the body to) sizes dst once, up to maxBodyPresize,
// instead of io.ReadAll's growing and copying.
func readBody(r io.Reader, declared int64, dst []byte) ([]byte, error) {
	want := initialBodyRead
	if declared >= 0 {
		// One byte more, so that the read that sees EOF needs no growth.
		want = int(min(declared, maxBodyPresize)) + 1
	}
	if cap(dst)-len(dst) < want {
		nb := make([]byte, len(dst), len(dst)+want)
		copy(nb, dst)
		dst = nb
	}
	for {
		if len(dst) == cap(dst) {
			dst = append(dst, 0)[:len(dst)] // let append pick the growth
		}
		n, err := r.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if err != nil {
			if errors.Is(err, io.EOF) {
				return dst, nil
			}
			return dst, err
		}
	}
}

// logEventBatch is LogEvents for a request's batch: the same checks and the
// same one spool write, but the records are encoded one after another into
// one pooled buffer instead of one allocation each (the spool copies them
// into its own write buffer before AppendBatch returns).
func logEventBatch(app Appender, recent *RecentIDs, ins []event.Input, d event.Defaults) ([]Logged, error) {
	arena := spoolBuffers.get()
	defer spoolBuffers.put(arena)
	return logRecords(app, recent, upload.KindEvent, d.Customer, len(ins), func(i int) (record, error) {
		e, given, err := normalizeEvent(ins[i], d)
		if err != nil {
			return record{}, err
		}
		start := len(*arena)
		b, err := event.AppendMarshal(*arena, &e)
		*arena = b
		// A full slice expression, so that nothing appended later can
		// write into this record even if it shared the backing array.
		return record{id: e.ActivityID, ts: e.TS, given: given, payload: b[start:len(b):len(b)]}, err
	})
}

// appendIngestResult appends res as writeJSON encodes it (encoding/json,
// HTML escaping on, a trailing newline).
func appendIngestResult(b []byte, res *IngestResult) []byte {
	b = append(b, `{"accepted":`...)
	b = strconv.AppendInt(b, int64(res.Accepted), 10)
	b = append(b, `,"duplicates":`...)
	b = strconv.AppendInt(b, int64(res.Duplicates), 10)
	b = append(b, `,"rejected":`...)
	b = strconv.AppendInt(b, int64(res.Rejected), 10)
	b = append(b, `,"results":`...)
	if res.Results == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range res.Results {
			r := &res.Results[i]
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"index":`...)
			b = strconv.AppendInt(b, int64(r.Index), 10)
			if r.ID != "" {
				b = append(b, `,"id":`...)
				b = appendJSONString(b, r.ID)
			}
			b = append(b, `,"status":`...)
			b = appendJSONString(b, r.Status)
			if r.Error != "" {
				b = append(b, `,"error":`...)
				b = appendJSONString(b, r.Error)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, "}\n"...)
}

// appendJSONString appends s as encoding/json quotes it. Ids and statuses
// are plain ASCII, copied as they are; anything else (a quote, a control
// character, <, > or &, which encoding/json escapes for HTML, non-ASCII)
// goes through encoding/json itself.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
