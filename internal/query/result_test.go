package query

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/activitybi/activitybi/internal/warehouse"
)

// TestResultPaging pages through a result with several limits: the rows
// come back whole and in order, every page's rows fit MaxPageBytes, and
// next_offset chains the pages.
func TestResultPaging(t *testing.T) {
	t.Parallel()
	e, _ := setup(t, Options{ResultCap: 4 << 20})
	tk := waitFinal(t, e, "alice", submit(t, e, "alice", "events", "").ID)
	if tk.Sampled || tk.Rows != 1907 {
		t.Fatalf("ticket %+v", tk)
	}
	var ref [][]any
	for _, limit := range []int{0, 37, MaxPageRows, 5000} {
		_, rows := allRows(t, e, "alice", tk.ID, limit)
		if ref == nil {
			ref = rows
		} else if !reflect.DeepEqual(rows, ref) {
			t.Fatalf("limit %d gives other rows", limit)
		}
	}
	if int64(len(ref)) != tk.Rows {
		t.Fatalf("%d rows, want %d", len(ref), tk.Rows)
	}
	for i, r := range ref {
		if _, err := time.Parse(time.RFC3339Nano, r[1].(string)); err != nil || r[4] != strings.Repeat("x", 200) {
			t.Fatalf("row %d: %v", i, r)
		}
	}
	p, err := e.Result(t.Context(), "alice", tk.ID, 0, MaxPageRows)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(p.Rows)
	if len(b) > MaxPageBytes || len(p.Rows) >= MaxPageRows || p.NextOffset != len(p.Rows) {
		t.Errorf("page of %d rows, %d bytes, next %d", len(p.Rows), len(b), p.NextOffset)
	}
	if p, err := e.Result(t.Context(), "alice", tk.ID, 5000, 10); err != nil || len(p.Rows) != 0 || p.NextOffset != -1 {
		t.Errorf("past the end: %+v %v", p, err)
	}
	if _, err := e.Result(t.Context(), "alice", tk.ID, -1, 10); err == nil {
		t.Error("negative offset accepted")
	}
}

// TestPageClipsHugeRow: a row larger than a page comes back with its long
// values shortened, and the page says so.
func TestPageClipsHugeRow(t *testing.T) {
	t.Parallel()
	e, _ := setup(t, Options{Compile: func(req Request, now time.Time) (*Compiled, error) {
		return &Compiled{SQL: `SELECT 1 AS id, repeat('é', 20000) AS big, 'small' AS s UNION ALL SELECT 2, 'b', 't' ORDER BY id`,
			Key: []byte("clip"), Name: "clip"}, nil
	}})
	tk := waitFinal(t, e, "alice", submit(t, e, "alice", "clip", "").ID)
	p, err := e.Result(t.Context(), "alice", tk.ID, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(p.Rows)
	if !p.Clipped || len(p.Rows) != 1 || len(b) > MaxPageBytes || p.NextOffset != 1 {
		t.Fatalf("page clipped=%v rows=%d bytes=%d next=%d", p.Clipped, len(p.Rows), len(b), p.NextOffset)
	}
	big := p.Rows[0][1].(string)
	if !strings.HasSuffix(big, "…") || !utf8.ValidString(big) || p.Rows[0][2] != "small" {
		t.Errorf("clipped row %.80q", p.Rows[0])
	}
	p2, err := e.Result(t.Context(), "alice", tk.ID, 1, 10)
	if err != nil || p2.Clipped || len(p2.Rows) != 1 || p2.NextOffset != -1 {
		t.Errorf("second page %+v %v", p2, err)
	}
}

// TestEncodeValues covers every Table value type.
func TestEncodeValues(t *testing.T) {
	ts := time.Date(2026, 3, 1, 12, 30, 0, 123456000, time.FixedZone("x", 3600))
	row := []any{nil, "a\"b\\c\n\x01\u2028é", int64(-42), 1.5, math.NaN(), math.Inf(1), math.Inf(-1), true, ts,
		map[string]any{"k": []any{1.0, "v", nil, math.NaN()}}, json.Number("12345678901234567890")}
	got, err := appendRow(nil, row)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "row.json", string(got)+"\n")
	var back []any
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if back[1] != row[1] || back[8] != "2026-03-01T11:30:00.123456Z" {
		t.Errorf("round trip %v", back)
	}
}

// TestSampleSQL pins the statements the engine writes around a template's
// SQL for each dialect.
func TestSampleSQL(t *testing.T) {
	var b strings.Builder
	for _, d := range []string{DialectDuckDB, DialectSnowflake} {
		for _, rate := range []float64{MinSampleRate, 0.0123456789, 0.5} {
			q, err := SampleSQL(d, "SELECT activity, count(*) FROM claude_stream WHERE ts >= ? GROUP BY ALL -- note\n;", rate, 12345)
			if err != nil {
				t.Fatal(err)
			}
			b.WriteString("-- " + d + " " + percent(rate) + "%\n" + q + ";\n\n")
		}
	}
	golden(t, "sample.sql", b.String())
	for _, rate := range []float64{0, MinSampleRate / 2, 1, math.NaN()} {
		if _, err := SampleSQL(DialectDuckDB, "SELECT 1", rate, 1); err == nil {
			t.Errorf("rate %v accepted", rate)
		}
	}
}

// TestQueryHash pins the hash: it is stored with insights, so it must not
// change for the same question within a version.
func TestQueryHash(t *testing.T) {
	h := QueryHash("alice", []byte(`tool_latency {"days":7}`))
	golden(t, "hash.txt", h+"\n")
	if len(h) != 34 || !strings.HasPrefix(h, "q_") {
		t.Errorf("hash %q", h)
	}
	for _, other := range [][2]string{{"bob", `tool_latency {"days":7}`}, {"alice", `tool_latency {"days":8}`},
		{"alicetool_latency", ` {"days":7}`}, {"", `alicetool_latency {"days":7}`}} {
		if QueryHash(other[0], []byte(other[1])) == h {
			t.Errorf("%q %q has the same hash", other[0], other[1])
		}
	}
}

func TestNextRate(t *testing.T) {
	for _, c := range []struct {
		rate        float64
		size, limit int64
		want        float64
	}{
		{1, 10 << 20, 1 << 20, 0.09},
		{0.5, 2 << 20, 1 << 20, 0.225},
		{1, 900, 1000, 0.9}, // under the limit (a row bound): still lower
		{0.002, 100 << 20, 1 << 20, MinSampleRate},
	} {
		if got := nextRate(c.rate, c.size, c.limit); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("nextRate(%g, %d, %d) = %g, want %g", c.rate, c.size, c.limit, got, c.want)
		}
	}
}

// FuzzParsePage feeds arbitrary result files to the page reader: it must
// not panic, and a page it returns fits its limits.
func FuzzParsePage(f *testing.F) {
	rows, _ := encodeRows([][]any{{"a", int64(1)}, {"b", nil}, {strings.Repeat("z", 300), 2.5}}, 1<<20)
	good, _ := resultFile(resultHeader{Format: resultFormat, Version: resultVersion, Columns: []resultColumn{{"s", "VARCHAR"}, {"n", "BIGINT"}}, Rows: 3}, rows.buf)
	f.Add(good, 0, 2, 200)
	f.Add(good, 1, 10, 40)
	f.Add([]byte(`{"format":"activitybi-query-result","version":1,"columns":[{"name":"a"}],"rows":1}`+"\n[1,2]\n"), 0, 1, 100)
	f.Add([]byte("\n"), 0, 1, 10)
	f.Fuzz(func(t *testing.T, data []byte, offset, limit, budget int) {
		offset, limit, budget = abs(offset)%1000, abs(limit)%100+1, abs(budget)%4096+64
		p, err := parsePage(data, offset, limit, budget)
		if err != nil {
			return
		}
		if len(p.Rows) > limit || p.NextOffset >= 0 && p.NextOffset != offset+len(p.Rows) {
			t.Fatalf("page %+v for limit %d", p, limit)
		}
		for _, r := range p.Rows {
			if len(r) != len(p.Columns) {
				t.Fatalf("row %v for %d columns", r, len(p.Columns))
			}
		}
		if b, _ := json.Marshal(p.Rows); !p.Clipped && len(b) > budget {
			t.Fatalf("%d bytes of rows over the budget %d", len(b), budget)
		}
	})
}

func abs(n int) int {
	if n < 0 {
		if n == math.MinInt {
			return 0
		}
		return -n
	}
	return n
}

// FuzzAppendString holds the string encoder to encoding/json: the same
// value once decoded, and valid JSON.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "quote\" back\\ nl\n tab\t ctl\x01\x1f", "é\u2028\u2029", "bad\xff\xfeutf8", "\x7f<>&"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := appendString(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("%q encodes to invalid JSON %q: %v", s, got, err)
		}
		ref, _ := json.Marshal(s)
		var want string
		_ = json.Unmarshal(ref, &want)
		if back != want {
			t.Fatalf("%q: decodes to %q, encoding/json's to %q", s, back, want)
		}
		if bytes.ContainsAny(got, "\n\r") {
			t.Fatalf("%q: raw line break in %q", s, got)
		}
	})
}

// FuzzClipString: a clipped string is valid UTF-8 when its input is, and
// its JSON fits the limit.
func FuzzClipString(f *testing.F) {
	f.Add(strings.Repeat("é", 100), 40)
	f.Add("\x01\x02\x03\x04\x05\x06\x07\x08", 20)
	f.Fuzz(func(t *testing.T, s string, limit int) {
		limit = abs(limit)%200 + minClipBytes
		c := clipString(s, limit)
		if utf8.ValidString(s) && !utf8.ValidString(c) {
			t.Fatalf("clip of valid %q is invalid %q", s, c)
		}
		if n := len(appendString(nil, c)); n > limit {
			t.Fatalf("clip of %q to %d is %d bytes of JSON", s, limit, n)
		}
	})
}

var _ = warehouse.Column{}

// TestSampleSQLSnowflakeUnseeded: Snowflake accepts SEED (REPEATABLE) only
// with SYSTEM/BLOCK sampling of a table ("sampling with a seed is not
// supported on views or subqueries", docs.snowflake.com SAMPLE /
// TABLESAMPLE); the engine samples a subquery, row by row.
func TestSampleSQLSnowflakeUnseeded(t *testing.T) {
	q, err := SampleSQL(DialectSnowflake, "SELECT 1 AS x", 0.5, 42)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(q, "SEED") || strings.Contains(q, "REPEATABLE") || !strings.Contains(q, "SAMPLE BERNOULLI (50.0000)") {
		t.Errorf("snowflake sample of a subquery: %s", q)
	}
}
