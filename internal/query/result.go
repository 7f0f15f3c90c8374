package query

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/activitybi/activitybi/internal/warehouse"
)

// Result files. A succeeded ticket's result is one file in Options.Dir,
// <ticket id>.ndjson: a header line (a JSON object: format, version,
// columns, row and byte counts, sampling), then one JSON array per row.
// Files are written whole and atomically (tmp, fsync, rename, fsync dir),
// mode 0600, and are at most ResultCap bytes of rows plus the header.
// Values: strings, numbers, booleans, null, and decoded JSON as such; times
// as RFC 3339 strings in UTC; non-finite floats as the strings "NaN",
// "+Inf", "-Inf" (JSON has no such numbers).

const (
	resultFormat  = "activitybi-query-result"
	resultVersion = 1
	resultExt     = ".ndjson"
	// fileMode and dirMode keep results private to the user.
	fileMode = 0o600
	dirMode  = 0o700

	// MaxPageBytes bounds the JSON of one page's rows. Claude Code warns
	// at 10,000 tokens of tool output and refuses above 25,000; JSON rows
	// run 3-4 bytes per token, so 16 KiB is ~4,000-5,500 tokens, leaving
	// room for the MCP layer to carry a page twice (structured content
	// and its text) under the warning.
	MaxPageBytes = 16 << 10
	// DefaultPageRows is a page's row limit when the caller gives none.
	DefaultPageRows = 100
	// MaxPageRows is the most rows a page holds whatever the caller asks.
	MaxPageRows = 1000
	// minClipBytes is the least a clipped value keeps of its JSON text.
	minClipBytes = 32
	// maxResultFile guards reading a result file: ours are at most the
	// cap plus a header; anything far larger is not ours to parse.
	maxResultFileSlack = 1 << 20
)

type resultColumn struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

type resultHeader struct {
	Format     string         `json:"format"`
	Version    int            `json:"version"`
	Ticket     string         `json:"ticket"`
	QueryHash  string         `json:"query_hash"`
	Columns    []resultColumn `json:"columns"`
	Rows       int64          `json:"rows"`
	Bytes      int64          `json:"bytes"`
	Sampled    bool           `json:"sampled,omitempty"`
	SampleRate float64        `json:"sample_rate,omitempty"`
	Truncated  bool           `json:"truncated,omitempty"`
}

// encoded is a result's rows as NDJSON lines, cut at a byte limit.
type encoded struct {
	buf  []byte // the lines that fit the limit
	rows int64  // rows in buf
	size int64  // bytes of every row's line, including those not in buf
	all  bool   // every row is in buf
	// widest is the longest row line: a row over the cap cannot be kept
	// at any sample rate.
	widest int64
}

// encodeRows encodes rows as JSON array lines, keeping in buf only the
// lines that fit limit bytes in total but measuring all of them.
func encodeRows(rows [][]any, limit int64) (encoded, error) {
	var e encoded
	e.all = true
	var scratch []byte
	for _, r := range rows {
		var err error
		scratch, err = appendRow(scratch[:0], r)
		if err != nil {
			return e, err
		}
		scratch = append(scratch, '\n')
		e.size += int64(len(scratch))
		e.widest = max(e.widest, int64(len(scratch)))
		if e.all && e.size <= limit {
			e.buf = append(e.buf, scratch...)
			e.rows++
		} else {
			e.all = false
		}
	}
	return e, nil
}

// appendRow appends row as a JSON array.
func appendRow(dst []byte, row []any) ([]byte, error) {
	dst = append(dst, '[')
	for i, v := range row {
		if i > 0 {
			dst = append(dst, ',')
		}
		var err error
		if dst, err = appendValue(dst, v); err != nil {
			return dst, err
		}
	}
	return append(dst, ']'), nil
}

// appendValue appends one Table value as JSON.
func appendValue(dst []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case string:
		return appendString(dst, v), nil
	case int64:
		return strconv.AppendInt(dst, v, 10), nil
	case float64:
		return appendFloat(dst, v), nil
	case bool:
		return strconv.AppendBool(dst, v), nil
	case time.Time:
		return appendString(dst, v.UTC().Format(time.RFC3339Nano)), nil
	case json.Number:
		return append(dst, v...), nil
	}
	b, err := json.Marshal(sanitize(v))
	if err != nil {
		return dst, fmt.Errorf("encode result value %T: %w", v, err)
	}
	return append(dst, b...), nil
}

func appendFloat(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(dst, `"+Inf"`...)
	case math.IsInf(f, -1):
		return append(dst, `"-Inf"`...)
	}
	return strconv.AppendFloat(dst, f, 'g', -1, 64)
}

// sanitize makes a decoded JSON value (or a list/struct the driver made)
// encodable: non-finite floats become strings, times RFC 3339 strings,
// other Go types their Table form.
func sanitize(v any) any {
	switch v := v.(type) {
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			b := appendFloat(nil, v)
			return string(b[1 : len(b)-1]) // the text without its quotes
		}
		return v
	case time.Time:
		return v.UTC().Format(time.RFC3339Nano)
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = sanitize(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = sanitize(e)
		}
		return out
	case nil, string, int64, bool, json.Number:
		return v
	}
	return fmt.Sprint(v)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string: quotes, backslashes and control
// characters escaped, U+2028 and U+2029 escaped (JavaScript line breaks),
// invalid UTF-8 replaced by U+FFFD, as encoding/json does.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// resultFile builds a result file's bytes.
func resultFile(h resultHeader, rows []byte) ([]byte, error) {
	hb, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("encode result header: %w", err)
	}
	out := make([]byte, 0, len(hb)+1+len(rows))
	out = append(out, hb...)
	out = append(out, '\n')
	return append(out, rows...), nil
}

func toResultColumns(cols []warehouse.Column) []resultColumn {
	out := make([]resultColumn, len(cols))
	for i, c := range cols {
		out[i] = resultColumn{Name: c.Name, Type: c.Type}
	}
	return out
}

// errBadResult marks a result file that is not one this engine wrote.
var errBadResult = errors.New("not a query result file")

// readResultFile reads a result file, refusing one larger than limit.
func readResultFile(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: larger than %d bytes", errBadResult, limit)
	}
	return b, nil
}

// parsePage reads rows [offset, offset+limit) of a result file's bytes,
// within budget bytes of row JSON. A first row that alone is over the
// budget has its values clipped so that the page still makes progress.
func parsePage(data []byte, offset, limit, budget int) (*Page, error) {
	nl := bytes.IndexByte(data, '\n')
	if nl < 0 {
		return nil, fmt.Errorf("%w: no header line", errBadResult)
	}
	var h resultHeader
	if err := json.Unmarshal(data[:nl], &h); err != nil {
		return nil, fmt.Errorf("%w: header: %v", errBadResult, err)
	}
	if h.Format != resultFormat || h.Version != resultVersion {
		return nil, fmt.Errorf("%w: format %q version %d", errBadResult, h.Format, h.Version)
	}
	p := &Page{Columns: make([]warehouse.Column, len(h.Columns)), Rows: [][]any{}, Offset: offset,
		Total: h.Rows, NextOffset: -1, Sampled: h.Sampled, SampleRate: h.SampleRate, Truncated: h.Truncated}
	for i, c := range h.Columns {
		p.Columns[i] = warehouse.Column{Name: c.Name, Type: c.Type}
	}
	rest := data[nl+1:]
	for i := 0; i < offset; i++ {
		j := bytes.IndexByte(rest, '\n')
		if j < 0 {
			return p, nil // past the end
		}
		rest = rest[j+1:]
	}
	used := 2 // the brackets around the rows
	for len(p.Rows) < limit && len(rest) > 0 {
		j := bytes.IndexByte(rest, '\n')
		if j < 0 {
			return nil, fmt.Errorf("%w: row %d has no line end", errBadResult, offset+len(p.Rows))
		}
		line := rest[:j]
		cost := len(line)
		if len(p.Rows) > 0 {
			cost++ // comma
		}
		if used+cost > budget {
			if len(p.Rows) > 0 {
				break
			}
			row, err := decodeRow(line, len(h.Columns))
			if err != nil {
				return nil, fmt.Errorf("%w: row %d: %v", errBadResult, offset, err)
			}
			p.Rows = append(p.Rows, clipRow(row, budget-used))
			p.Clipped = true
			rest = rest[j+1:]
			break
		}
		row, err := decodeRow(line, len(h.Columns))
		if err != nil {
			return nil, fmt.Errorf("%w: row %d: %v", errBadResult, offset+len(p.Rows), err)
		}
		p.Rows = append(p.Rows, row)
		used += cost
		rest = rest[j+1:]
	}
	if next := offset + len(p.Rows); int64(next) < h.Rows && len(rest) > 0 {
		p.NextOffset = next
	}
	return p, nil
}

// decodeRow decodes one row line, numbers as json.Number (exact).
func decodeRow(line []byte, cols int) ([]any, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	var row []any
	if err := dec.Decode(&row); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("data after the row")
	}
	if row == nil {
		return nil, errors.New("not an array")
	}
	if len(row) != cols {
		return nil, fmt.Errorf("%d values for %d columns", len(row), cols)
	}
	return row, nil
}

// clipRow shortens the values of row so that its JSON fits budget bytes
// (as near as the per-value floor minClipBytes allows): a value whose JSON
// is longer than its share becomes a string of its first characters (of
// the JSON text, for a value that is not a string) followed by "…".
func clipRow(row []any, budget int) []any {
	share := minClipBytes
	if len(row) > 0 {
		share = max(minClipBytes, (budget-2-len(row))/len(row))
	}
	out := make([]any, len(row))
	for i, v := range row {
		b, err := appendValue(nil, v)
		if err != nil || len(b) <= share {
			out[i] = v
			continue
		}
		s, ok := v.(string)
		if !ok {
			s = string(b)
		}
		out[i] = clipString(s, share)
	}
	return out
}

// clipString returns the longest prefix of s, on a character boundary,
// whose JSON with a trailing "…" is at most limit bytes (escapes count).
func clipString(s string, limit int) string {
	const ellipsis = "…"
	n := 2 + len(ellipsis) // quotes
	cut := 0
	for cut < len(s) {
		_, size := utf8.DecodeRuneInString(s[cut:])
		w := len(appendString(nil, s[cut:cut+size])) - 2
		if n+w > limit {
			break
		}
		n += w
		cut += size
	}
	return s[:cut] + ellipsis
}

// removeIfExists removes path; a missing file is not an error.
func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
