package event

import (
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"
)

func insightDefaults() Defaults {
	return Defaults{Customer: "alice", Source: SourceMCP, Now: func() time.Time { return fixedNow }}
}

func TestNormalizeInsightFillsDefaults(t *testing.T) {
	t.Parallel()
	in, err := DecodeInsightInput([]byte(`{"subject":"tool:Bash","metric":"p95_latency_ms","value":{ "p50" : 120, "p95" : 412 }}`))
	if err != nil {
		t.Fatal(err)
	}
	x, err := NormalizeInsight(in, insightDefaults())
	if err != nil {
		t.Fatal(err)
	}
	if x.Customer != "alice" || x.Source != SourceMCP || !x.TS.Equal(fixedNow) || !x.ReceivedAt.Equal(fixedNow) || x.Verified {
		t.Fatalf("defaults not applied: %+v", x)
	}
	if len(x.AtomID) != 26 {
		t.Fatalf("want a ULID atom_id, got %q", x.AtomID)
	}
	if string(x.Value) != `{"p50":120,"p95":412}` {
		t.Fatalf("value not compacted: %s", x.Value)
	}
}

func TestNormalizeInsightKeepsCallerFields(t *testing.T) {
	t.Parallel()
	in, err := DecodeInsightInput([]byte(`{"atom_id":"req-1","subject":"project:billing","metric":"cost.usd","value":12.50,
		"provenance_query_hash":"0123456789abcdef","ts":"2026-11-25T11:00:00.1234567+01:00"}`))
	if err != nil {
		t.Fatal(err)
	}
	x, err := NormalizeInsight(in, insightDefaults())
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2026, 11, 25, 10, 0, 0, 123456000, time.UTC)
	if x.AtomID != "req-1" || x.Subject != "project:billing" || x.Metric != "cost.usd" || string(x.Value) != "12.50" ||
		x.ProvenanceQueryHash != "0123456789abcdef" || !x.TS.Equal(want) || x.TS.Location() != time.UTC {
		t.Fatalf("got %+v", x)
	}
}

func TestNormalizeInsightNeedsIdentity(t *testing.T) {
	t.Parallel()
	in := InsightInput{Subject: "user", Metric: "m", Value: json.RawMessage(`1`)}
	_, err := NormalizeInsight(in, Defaults{Source: SourceMCP})
	if err == nil || IsValidation(err) || !strings.Contains(err.Error(), "no customer") {
		t.Fatalf("want a plain no-customer error, got %v", err)
	}
}

func TestInsightValues(t *testing.T) {
	t.Parallel()
	for _, v := range []string{
		`412`, `-0.5`, `1e3`, `0`, `12345678901234567890`, `"rising"`, `""`, `true`, `false`, `{}`,
		`{"p50":120,"nested":{"a":[1,2,null]}}`, `"` + strings.Repeat("é", MaxInsightStringLen) + `"`,
		`{"k":"` + strings.Repeat("a", MaxInsightValueBytes-8) + `"}`, ` 7 `, `"\u2028<>&"`,
	} {
		x, err := NormalizeInsight(InsightInput{Subject: "user", Metric: "m", Value: json.RawMessage(v)}, insightDefaults())
		if err != nil {
			t.Errorf("value %.40s rejected: %v", v, err)
			continue
		}
		if want := strings.TrimSpace(v); string(x.Value) != want && v != `{"p50":120,"nested":{"a":[1,2,null]}}` {
			t.Errorf("value %.40s stored as %.40s", v, x.Value)
		}
	}
}

func TestInsightValidationErrors(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", MaxStringLen+1)
	ok := `"subject":"user","metric":"m","value":1`
	cases := map[string]struct {
		line string
		want string // substring of the error
	}{
		"empty line":         {``, "line: is empty"},
		"not json":           {`{"subject":`, "line: is not a JSON object"},
		"array line":         {`[1]`, "line: is not a JSON object"},
		"trailing data":      {`{` + ok + `} {}`, "line: is not a JSON object: JSON syntax error at byte 43: invalid character"},
		"unknown field":      {`{` + ok + `,"unit":"ms"}`, "unit: unknown field (allowed: atom_id, ts, subject, metric, value, provenance_query_hash)"},
		"customer field":     {`{` + ok + `,"customer":"bob"}`, "customer: cannot be set: an insight belongs to the customer of the connection's identity"},
		"customer_id field":  {`{` + ok + `,"customer_id":"bob"}`, "customer_id: cannot be set"},
		"pipeline field":     {`{` + ok + `,"_verified":true}`, "_verified: is maintained by the pipeline"},
		"case variant key":   {`{` + ok + `,"Subject":"x"}`, "Subject: unknown field"},
		"subject missing":    {`{"metric":"m","value":1}`, "subject: is required"},
		"subject blank":      {`{"subject":"  ","metric":"m","value":1}`, "subject: is required"},
		"subject long":       {`{"subject":"` + long + `","metric":"m","value":1}`, "subject: is 256 characters; the limit is 255"},
		"subject control":    {`{"subject":"a\tb","metric":"m","value":1}`, "subject: contains control characters"},
		"subject C1":         {`{"subject":"a\u0085b","metric":"m","value":1}`, "subject: contains control characters"},
		"subject linebreak":  {`{"subject":"a\u2028b","metric":"m","value":1}`, "one printable line"},
		"subject not string": {`{"subject":5,"metric":"m","value":1}`, "subject: must be a string, not number"},
		"metric missing":     {`{"subject":"user","value":1}`, "metric: is required"},
		"metric upper":       {`{"subject":"user","metric":"P95","value":1}`, `metric: "P95" must match ^[a-z][a-z0-9_.:-]*$`},
		"metric space":       {`{"subject":"user","metric":"p 95","value":1}`, "must match"},
		"metric digit first": {`{"subject":"user","metric":"9lives","value":1}`, "must match"},
		"metric long":        {`{"subject":"user","metric":"` + long + `","value":1}`, "metric: is 256 characters"},
		"value missing":      {`{"subject":"user","metric":"m"}`, "value: is required: a finite number, a string"},
		"value null":         {`{"subject":"user","metric":"m","value":null}`, "value: must not be null; accepted: a finite number"},
		"value array":        {`{"subject":"user","metric":"m","value":[1,2]}`, "value: must not be an array; accepted:"},
		"value infinite":     {`{"subject":"user","metric":"m","value":1e400}`, "value: 1e400 must be a finite number"},
		"value big object":   {`{"subject":"user","metric":"m","value":{"k":"` + strings.Repeat("a", MaxInsightValueBytes) + `"}}`, "value: is an object of 4104 bytes; the limit is 4096 (4 KiB)"},
		"value long string":  {`{"subject":"user","metric":"m","value":"` + strings.Repeat("a", MaxInsightStringLen+1) + `"}`, "value: is a string of 4097 characters; the limit is 4096"},
		"hash upper":         {`{` + ok + `,"provenance_query_hash":"0123456789ABCDEF"}`, "provenance_query_hash: \"0123456789ABCDEF\" must be 16 to 128 lowercase hex digits, optionally after \"q_\""},
		"hash short":         {`{` + ok + `,"provenance_query_hash":"abc"}`, "provenance_query_hash:"},
		"hash long":          {`{` + ok + `,"provenance_query_hash":"` + strings.Repeat("a", 129) + `"}`, "provenance_query_hash:"},
		"ts future":          {`{` + ok + `,"ts":"2026-11-25T12:05:01Z"}`, "ts: 2026-11-25T12:05:01Z is more than 5m0s in the future"},
		"ts before 1970":     {`{` + ok + `,"ts":"1969-12-31T23:59:59Z"}`, "ts: 1969-12-31T23:59:59Z is before 1970-01-01"},
		"ts bad format":      {`{` + ok + `,"ts":"yesterday"}`, `ts: "yesterday" is not an RFC 3339 timestamp`},
		"ts number":          {`{` + ok + `,"ts":5}`, "ts: must be an RFC 3339 timestamp string"},
		"atom_id long":       {`{` + ok + `,"atom_id":"` + long + `"}`, "atom_id: is 256 characters"},
		"atom_id control":    {`{` + ok + `,"atom_id":"a\u0001b"}`, "atom_id: contains control characters"},
		"line too long":      {`{` + ok + `,"atom_id":"` + strings.Repeat("a", MaxInsightLineBytes) + `"}`, "line: is 65590 bytes; the limit is 65536"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			in, err := DecodeInsightInput([]byte(tc.line))
			if err == nil {
				_, err = NormalizeInsight(in, insightDefaults())
			}
			if err == nil {
				t.Fatalf("accepted %.80s", tc.line)
			}
			if !IsValidation(err) {
				t.Fatalf("not a ValidationError: %T %v", err, err)
			}
			if !strings.HasPrefix(err.Error(), "invalid insight: ") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestInsightProblemsReportedTogether(t *testing.T) {
	t.Parallel()
	in, err := DecodeInsightInput([]byte(`{"subject":"","metric":"Bad","value":null,"provenance_query_hash":"x","ts":"1960-01-01T00:00:00Z"}`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = NormalizeInsight(in, insightDefaults())
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("want a ValidationError, got %v", err)
	}
	var fields []string
	for _, fe := range ve.Errs {
		fields = append(fields, fe.Field)
	}
	if got := strings.Join(fields, ","); got != "subject,metric,value,provenance_query_hash,ts" {
		t.Fatalf("fields %s; want every problem at once (%v)", got, err)
	}
	// Unknown and forbidden fields are all named too, in a stable order.
	_, err = DecodeInsightInput([]byte(`{"customer":"b","zeta":1,"_source":"api","alpha":2}`))
	if !errors.As(err, &ve) || len(ve.Errs) != 4 || ve.Errs[0].Field != "_source" || ve.Errs[1].Field != "alpha" ||
		ve.Errs[2].Field != "customer" || ve.Errs[3].Field != "zeta" {
		t.Fatalf("field errors: %v", err)
	}
}

func TestInsightRoundTrip(t *testing.T) {
	t.Parallel()
	ts := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	x, err := NormalizeInsight(InsightInput{AtomID: "a-1", Subject: "tool:Bash", Metric: "calls", TS: &ts,
		Value: json.RawMessage(`{"b":1,"a":"<x> & \"y\""}`), ProvenanceQueryHash: strings.Repeat("ab", 32)}, insightDefaults())
	if err != nil {
		t.Fatal(err)
	}
	b, err := MarshalInsight(&x)
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsRune(string(b), '\n') || !strings.Contains(string(b), `"<x> & \"y\""`) {
		t.Fatalf("encoded insight %s: want one line, HTML characters as given", b)
	}
	got, err := DecodeInsight(b)
	if err != nil {
		t.Fatal(err)
	}
	if !equalInsight(got, x) {
		t.Fatalf("round trip changed the insight:\n%+v\n%+v", x, got)
	}
}

func TestDecodeInsightRejectsDrift(t *testing.T) {
	t.Parallel()
	const good = `{"atom_id":"a","ts":"2026-01-01T00:00:00Z","customer_id":"c","subject":"user","metric":"m","value":1,"_verified":false,"_received_at":"2026-01-01T00:00:00Z","_source":"mcp"}`
	if _, err := DecodeInsight([]byte(good)); err != nil {
		t.Fatalf("good record: %v", err)
	}
	for name, tc := range map[string]struct{ rec, want string }{
		"unknown column":  {strings.Replace(good, `"atom_id"`, `"unit":"ms","atom_id"`, 1), `unknown field "unit"`},
		"wrong type":      {strings.Replace(good, `"customer_id":"c"`, `"customer_id":5`, 1), "decode insight"},
		"missing columns": {strings.Replace(good, `"ts":"2026-01-01T00:00:00Z","customer_id":"c",`, "", 1), "missing ts, customer_id"},
		"null value":      {strings.Replace(good, `"value":1`, `"value":null`, 1), "value: must not be null"},
		"bad metric":      {strings.Replace(good, `"metric":"m"`, `"metric":"M"`, 1), "invalid insight: metric"},
		"unknown source":  {strings.Replace(good, `"_source":"mcp"`, `"_source":"fax"`, 1), "_source: unknown source"},
		"future ts":       {strings.Replace(good, `"ts":"2026-01-01T00:00:00Z"`, `"ts":"2026-01-01T00:06:00Z"`, 1), "in the future"},
		"trailing data":   {good + `}`, "trailing data"},
		"not an object":   {`[]`, "decode insight"},
	} {
		_, err := DecodeInsight([]byte(tc.rec))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v; want it to contain %q", name, err, tc.want)
		}
	}
	// A hand-written record's value is compacted.
	x, err := DecodeInsight([]byte(strings.Replace(good, `"value":1`, `"value":{ "a" : [ 1 ] }`, 1)))
	if err != nil || string(x.Value) != `{"a":[1]}` {
		t.Fatalf("value %s, %v; want it compacted", x.Value, err)
	}
}

func TestValidMetricMatchesPattern(t *testing.T) {
	t.Parallel()
	re := regexp.MustCompile(MetricPattern)
	for _, s := range []string{"m", "p95_latency_ms", "cost.usd", "tokens:output", "a-b", "a9", "", "9a", "_a", "A", "aB", "a b", "é", "a/b", ".a"} {
		if got, want := validMetric(s), re.MatchString(s); got != want {
			t.Errorf("validMetric(%q) = %v, regexp says %v", s, got, want)
		}
	}
}

func equalInsight(a, b Insight) bool {
	return a.AtomID == b.AtomID && a.TS.Equal(b.TS) && a.Customer == b.Customer && a.Subject == b.Subject &&
		a.Metric == b.Metric && string(a.Value) == string(b.Value) && a.ProvenanceQueryHash == b.ProvenanceQueryHash &&
		a.Verified == b.Verified && a.ReceivedAt.Equal(b.ReceivedAt) && a.Source == b.Source
}

// FuzzDecodeInsight: no input panics. Each input is tried as a spool record
// and as a caller's line. A record DecodeInsight accepts is valid and
// survives MarshalInsight/DecodeInsight unchanged; a line that normalizes
// encodes to one line that decodes back to the same insight.
func FuzzDecodeInsight(f *testing.F) {
	x, _ := NormalizeInsight(InsightInput{AtomID: "id-ü", Subject: "tool:Bash", Metric: "p95_latency_ms",
		Value: json.RawMessage(`{"b":[1,{"c":"\"}"}],"a":"x"}`), ProvenanceQueryHash: "0123456789abcdef"}, insightDefaults())
	rec, _ := MarshalInsight(&x)
	f.Add(rec)
	for _, s := range []string{
		`{"subject":"user","metric":"m","value":1}`,
		`{"atom_id":"x","subject":"project:a","metric":"cost.usd","value":"\u2028<&>","ts":"2026-11-25T11:00:00Z"}`,
		`{"subject":"u","metric":"m","value":{ "a" : [ 1 , 2 ] }}`,
		`{"subject":"u","metric":"m","value":-0.0e-0}`,
		`{"subject":"u","metric":"m","value":null}`,
		`{"subject":"u","metric":"m","value":[1]}`,
		`{"atom_id":"a","ts":"2026-01-01T00:00:00Z","customer_id":"c","subject":"user","metric":"m","value":true,"_verified":true,"_received_at":"2026-01-01T00:00:00Z","_source":"api"}`,
		`{`, `null`, `[]`, `{"subject":1}`, `{"customer":"x"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if x, err := DecodeInsight(b); err == nil {
			if err := ValidateInsight(&x, x.ReceivedAt); err != nil {
				t.Fatalf("decoded record does not validate: %v", err)
			}
			if !pairedSurrogatesRef(x.Value) {
				t.Fatalf("value %s accepted with a lone surrogate escape, which the warehouse's JSON type refuses", x.Value)
			}
			roundTrip(t, x)
		}
		in, err := DecodeInsightInput(b)
		if err != nil {
			if !IsValidation(err) {
				t.Fatalf("non-validation error %T: %v", err, err)
			}
			return
		}
		x, err := NormalizeInsight(in, insightDefaults())
		if err != nil {
			if !IsValidation(err) {
				t.Fatalf("non-validation error %T: %v", err, err)
			}
			return
		}
		if !pairedSurrogatesRef(x.Value) {
			t.Fatalf("value %s accepted with a lone surrogate escape, which the warehouse's JSON type refuses", x.Value)
		}
		roundTrip(t, x)
	})
}

func roundTrip(t *testing.T, x Insight) {
	t.Helper()
	b, err := MarshalInsight(&x)
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsRune(string(b), '\n') {
		t.Fatalf("newline in encoded insight %q", b)
	}
	got, err := DecodeInsight(b)
	if err != nil {
		t.Fatalf("decode of own encoding %q: %v", b, err)
	}
	if !equalInsight(got, x) {
		t.Fatalf("round trip changed %+v -> %+v", x, got)
	}
}
