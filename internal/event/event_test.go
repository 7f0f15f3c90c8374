package event

import (
	"encoding/json"
	"math"
	"regexp"
	"strings"
	"testing"
	"time"
)

var fixedNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func defaults() Defaults {
	return Defaults{Customer: "alice", Source: SourceCLI, Now: func() time.Time { return fixedNow }}
}

func TestNormalizeFillsDefaults(t *testing.T) {
	t.Parallel()
	in, err := DecodeInput([]byte(`{"activity":"called_tool","feature_json":{ "tool" : "search" }}`))
	if err != nil {
		t.Fatal(err)
	}
	e, err := Normalize(in, defaults())
	if err != nil {
		t.Fatal(err)
	}
	if e.Customer != "alice" || e.Source != SourceCLI || !e.TS.Equal(fixedNow) || !e.ReceivedAt.Equal(fixedNow) {
		t.Fatalf("defaults not applied: %+v", e)
	}
	if len(e.ActivityID) != 26 {
		t.Fatalf("want a ULID, got %q", e.ActivityID)
	}
	if string(e.Features) != `{"tool":"search"}` {
		t.Fatalf("features not compacted: %s", e.Features)
	}
}

func TestNormalizeKeepsCallerIDAndCustomer(t *testing.T) {
	t.Parallel()
	in, err := DecodeInput([]byte(`{"activity_id":"req-1","customer":"bob","activity":"submitted_prompt","ts":"2026-11-25T11:00:00.1234567+01:00","revenue_impact":-0.5,"link":"https://example.com/x"}`))
	if err != nil {
		t.Fatal(err)
	}
	e, err := Normalize(in, defaults())
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2026, 11, 25, 10, 0, 0, 123456000, time.UTC)
	if e.ActivityID != "req-1" || e.Customer != "bob" || !e.TS.Equal(want) || e.TS.Location() != time.UTC {
		t.Fatalf("got %+v", e)
	}
	if string(e.Features) != "{}" || *e.RevenueImpact != -0.5 {
		t.Fatalf("got %+v", e)
	}
}

func TestAnonymousOnly(t *testing.T) {
	t.Parallel()
	in := Input{Activity: "started_session", AnonymousCustomerID: "anon-7"}
	e, err := Normalize(in, defaults())
	if err != nil {
		t.Fatal(err)
	}
	if e.Customer != "" || e.AnonymousCustomerID != "anon-7" {
		t.Fatalf("got %+v", e)
	}
	if _, err := Normalize(Input{Activity: "started_session"}, Defaults{Source: SourceCLI}); err == nil || !strings.Contains(err.Error(), "customer: is required") {
		t.Fatalf("want customer required, got %v", err)
	}
}

func TestValidationErrors(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", MaxStringLen+1)
	bigFeatures := `{"k":"` + strings.Repeat("a", MaxFeatureBytes) + `"}`
	cases := map[string]struct {
		line string
		want string // substring of the error
	}{
		"empty line":           {``, "line: is empty"},
		"not json":             {`{"activity":`, "line: is not a JSON object"},
		"array":                {`[1,2]`, "line: is not a JSON object"},
		"missing activity":     {`{"feature_json":{}}`, "activity: is required"},
		"camel activity":       {`{"activity":"calledTool"}`, "is not verb_noun"},
		"single word":          {`{"activity":"called"}`, "is not verb_noun"},
		"leading digit":        {`{"activity":"1called_tool"}`, "is not verb_noun"},
		"trailing underscore":  {`{"activity":"called_"}`, "is not verb_noun"},
		"upper case":           {`{"activity":"Called_tool"}`, "is not verb_noun"},
		"unknown field":        {`{"activity":"called_tool","tool":"x"}`, `tool: unknown field`},
		"pipeline field":       {`{"activity":"called_tool","_activity_occurrence":3}`, "_activity_occurrence: is maintained by the pipeline"},
		"source field":         {`{"activity":"called_tool","_source":"mcp"}`, "_source: is maintained by the pipeline"},
		"long customer":        {`{"activity":"called_tool","customer":"` + long + `"}`, "customer: is 256 characters; the limit is 255"},
		"long activity id":     {`{"activity":"called_tool","activity_id":"` + long + `"}`, "activity_id: is 256 characters"},
		"control in id":        {`{"activity":"called_tool","activity_id":"a\u0001b"}`, "activity_id: contains control characters"},
		"features not object":  {`{"activity":"called_tool","feature_json":[1]}`, "feature_json: must be a JSON object"},
		"features string":      {`{"activity":"called_tool","feature_json":"{}"}`, "feature_json: must be a JSON object"},
		"features too big":     {`{"activity":"called_tool","feature_json":` + bigFeatures + `}`, "feature_json: is 65544 bytes; the limit is 65536"},
		"line too long":        {`{"activity":"called_tool","feature_json":{"k":"` + strings.Repeat("a", MaxLineBytes) + `"}}`, "line: is 1048626 bytes; the limit for a line is 1048576 bytes (1 MiB), and feature_json may be at most 65536 bytes (64 KiB) once compacted"},
		"ts in future":         {`{"activity":"called_tool","ts":"2026-11-25T12:05:01Z"}`, "more than 5m0s in the future"},
		"ts bad format":        {`{"activity":"called_tool","ts":"yesterday"}`, "ts: "},
		"ts before 1970":       {`{"activity":"called_tool","ts":"1969-12-31T23:59:59Z"}`, "before 1970"},
		"revenue not number":   {`{"activity":"called_tool","revenue_impact":"1.5"}`, "revenue_impact: must be a number"},
		"revenue out of range": {`{"activity":"called_tool","revenue_impact":1e400}`, "revenue_impact"},
		"link not http":        {`{"activity":"called_tool","link":"ftp://x.org/a"}`, "link: \"ftp://x.org/a\" is not an http(s) URL"},
		"link relative":        {`{"activity":"called_tool","link":"/a/b"}`, "is not an http(s) URL"},
		"link no host name":    {`{"activity":"called_tool","link":"http://:8080/a"}`, "is not an http(s) URL"},
		"link empty brackets":  {`{"activity":"called_tool","link":"https://[]/a"}`, "is not an http(s) URL"},
		"link only userinfo":   {`{"activity":"called_tool","link":"https://user@/a"}`, "is not an http(s) URL"},
		"trailing data":        {`{"activity":"called_tool"} {"activity":"called_tool"}`, "line: "},
		"several problems":     {`{"activity":"x","link":"nope"}`, "activity: \"x\" is not verb_noun"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			in, err := DecodeInput([]byte(tc.line))
			if err == nil {
				_, err = Normalize(in, defaults())
			}
			if err == nil {
				t.Fatalf("accepted %s", tc.line)
			}
			if !IsValidation(err) {
				t.Fatalf("not a ValidationError: %T %v", err, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

// Features written with spaces after the separators make a line longer
// than the object they hold: the rule is on the object compacted, so a
// line over MaxFeatureBytes (and over the old 80 KiB line limit) that
// compacts within it is accepted, and stored compacted.
func TestSpacedFeaturesWithinTheLimitOnceCompacted(t *testing.T) {
	t.Parallel()
	features := `{"a": [0` + strings.Repeat(", 0", 30_000-1) + `]}`
	line := `{"activity": "called_tool", "feature_json": ` + features + `}`
	if len(line) <= 80<<10 {
		t.Fatalf("the line is %d bytes; the test needs one over 80 KiB", len(line))
	}
	in, err := DecodeInput([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	e, err := Normalize(in, defaults())
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.ReplaceAll(features, " ", ""); string(e.Features) != want {
		t.Fatalf("features stored as %d bytes, want the %d of the compacted object", len(e.Features), len(want))
	}
	// Features that do not fit once compacted are refused for what they
	// are, however they were written.
	in.Features = []byte(`{"a": [0` + strings.Repeat(", 0", 40_000-1) + `]}`)
	if _, err := Normalize(in, defaults()); err == nil || !strings.Contains(err.Error(), "feature_json: is 80007 bytes; the limit is 65536") {
		t.Fatalf("80 KB compacted: %v", err)
	}
	in.Features = []byte(`{"a": [0` + strings.Repeat(",                 0", 60_000) + `]}`)
	if _, err := Normalize(in, defaults()); err == nil || !strings.Contains(err.Error(), "feature_json: is 1140010 bytes as sent; the limit is 65536 bytes (64 KiB) once compacted, and 1048576 bytes (1 MiB) as sent") {
		t.Fatalf("over a line as sent: %v", err)
	}
}

func TestSeveralProblemsReportedTogether(t *testing.T) {
	t.Parallel()
	in, err := DecodeInput([]byte(`{"activity":"x","link":"nope"}`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Normalize(in, defaults())
	ve := err.(*ValidationError)
	if len(ve.Errs) != 2 || ve.Errs[0].Field != "activity" || ve.Errs[1].Field != "link" {
		t.Fatalf("want activity and link errors, got %v", ve.Errs)
	}
}

func TestNonFiniteRevenue(t *testing.T) {
	t.Parallel()
	for _, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		v := v
		if _, err := Normalize(Input{Activity: "called_tool", RevenueImpact: &v}, defaults()); err == nil || !strings.Contains(err.Error(), "finite") {
			t.Fatalf("%v accepted: %v", v, err)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	r := -0.25
	ts := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	in := Input{ActivityID: "id-1", TS: &ts, Customer: "c", Activity: "called_tool", AnonymousCustomerID: "a",
		Features: json.RawMessage(`{"b":1,"a":"x"}`), RevenueImpact: &r, Link: "http://x.y/z"}
	e, err := Normalize(in, defaults())
	if err != nil {
		t.Fatal(err)
	}
	b, err := Marshal(&e)
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsRune(string(b), '\n') {
		t.Fatal("encoded event contains a newline")
	}
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.ActivityID != e.ActivityID || !got.TS.Equal(e.TS) || got.Customer != e.Customer || got.Activity != e.Activity ||
		got.AnonymousCustomerID != e.AnonymousCustomerID || string(got.Features) != string(e.Features) ||
		*got.RevenueImpact != *e.RevenueImpact || got.Link != e.Link || !got.ReceivedAt.Equal(e.ReceivedAt) || got.Source != e.Source {
		t.Fatalf("round trip changed the event:\n%+v\n%+v", e, got)
	}
}

func TestDecodeRejectsDrift(t *testing.T) {
	t.Parallel()
	for name, rec := range map[string]string{
		"unknown column": `{"activity_id":"a","ts":"2026-01-01T00:00:00Z","customer":"c","activity":"called_tool","feature_json":{},"_received_at":"2026-01-01T00:00:00Z","_source":"cli","extra":1}`,
		"wrong type":     `{"activity_id":"a","ts":"2026-01-01T00:00:00Z","customer":5,"activity":"called_tool","feature_json":{},"_received_at":"2026-01-01T00:00:00Z","_source":"cli"}`,
		"missing ts":     `{"activity_id":"a","customer":"c","activity":"called_tool","feature_json":{},"_received_at":"2026-01-01T00:00:00Z","_source":"cli"}`,
		// encoding/json's Decoder.More is false before a closing bracket,
		// so checking for trailing data with it let these through.
		"trailing bracket": `{"activity_id":"a","ts":"2026-01-01T00:00:00Z","customer":"c","activity":"called_tool","feature_json":{},"_received_at":"2026-01-01T00:00:00Z","_source":"cli"}]`,
		"trailing brace":   `{"activity_id":"a","ts":"2026-01-01T00:00:00Z","customer":"c","activity":"called_tool","feature_json":{},"_received_at":"2026-01-01T00:00:00Z","_source":"cli"} }`,
	} {
		if _, err := Decode([]byte(rec)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// Not parallel: ids are monotonic for non-decreasing times within a process,
// and other tests generating ids for other times would interleave.
func TestIDsAreOrderedAndUnique(t *testing.T) {
	seen := map[string]bool{}
	prev := ""
	for i := 0; i < 10000; i++ {
		id := NewID(fixedNow)
		if seen[id] || id <= prev {
			t.Fatalf("id %d %q not unique/increasing after %q", i, id, prev)
		}
		seen[id] = true
		prev = id
	}
}

// FuzzDecodeInput: no input panics; whatever is accepted normalizes into an
// event that encodes to one line and decodes back to the same event.
func FuzzDecodeInput(f *testing.F) {
	for _, s := range []string{
		`{"activity":"called_tool"}`,
		`{"activity":"called_tool","feature_json":{"a":[1,2,{"b":null}]},"ts":"2026-11-25T11:00:00Z"}`,
		`{"activity_id":"x","customer":"c","activity":"a_b","revenue_impact":-1.5,"link":"https://a.b"}`,
		`{"activity":"a_b","anonymous_customer_id":"z","customer":""}`,
		`{"activity":"a_b","feature_json":{"\u2028":"\n"}}`,
		`{"activity":"a_b","feature_json":{"k":"\ud83d\ude00\\ud800"}}`,
		`{`, `null`, `[]`, `{"activity":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		in, err := DecodeInput(line)
		if err != nil {
			if !IsValidation(err) {
				t.Fatalf("non-validation error %T: %v", err, err)
			}
			return
		}
		e, err := Normalize(in, defaults())
		if err != nil {
			return
		}
		if !pairedSurrogatesRef(e.Features) {
			t.Fatalf("feature_json %s accepted with a lone surrogate escape, which the warehouse's JSON type refuses", e.Features)
		}
		b, err := Marshal(&e)
		if err != nil {
			t.Fatal(err)
		}
		if strings.ContainsRune(string(b), '\n') {
			t.Fatalf("newline in encoded event %q", b)
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatalf("decode of own encoding %q: %v", b, err)
		}
		if err := Validate(&got, fixedNow); err != nil {
			t.Fatalf("re-validate: %v", err)
		}
		if got.ActivityID != e.ActivityID || !got.TS.Equal(e.TS) || string(got.Features) != string(e.Features) {
			t.Fatalf("round trip changed %+v -> %+v", e, got)
		}
	})
}

// FuzzDecodeFast: whatever the fast record decoder accepts, encoding/json
// decodes to the same event.
func FuzzDecodeFast(f *testing.F) {
	r := -0.125
	ts := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	e, _ := Normalize(Input{ActivityID: "id-ü", TS: &ts, Customer: "c", Activity: "called_tool",
		Features: json.RawMessage(`{"b":[1,{"c":"\"}"}],"a":"x"}`), RevenueImpact: &r, Link: "http://x.y/z"}, defaults())
	b, _ := Marshal(&e)
	f.Add(b)
	f.Add([]byte(`{"activity_id":"a","ts":"2026-01-01T00:00:00Z","activity":"a_b","feature_json":{},"_received_at":"2026-01-01T00:00:00Z","_source":"cli","revenue_impact":null}`))
	f.Add([]byte(`{"activity_id":"a","activity_id":"b"}`))
	f.Add([]byte(`{"revenue_impact":1e400}`))
	f.Add([]byte(` { "customer" : "x\u0041" } `))
	f.Fuzz(func(t *testing.T, b []byte) {
		var fast Event
		if !decodeFast(b, &fast) {
			return
		}
		slow, err := decodeSlow(b)
		fastE, ferr := finishDecode(fast)
		if (err == nil) != (ferr == nil) {
			t.Fatalf("fast err %v, slow err %v for %q", ferr, err, b)
		}
		if err != nil {
			return
		}
		same := fastE.ActivityID == slow.ActivityID && fastE.TS.Equal(slow.TS) && fastE.Customer == slow.Customer &&
			fastE.Activity == slow.Activity && fastE.AnonymousCustomerID == slow.AnonymousCustomerID &&
			string(fastE.Features) == string(slow.Features) && fastE.Link == slow.Link &&
			fastE.ReceivedAt.Equal(slow.ReceivedAt) && fastE.Source == slow.Source &&
			(fastE.RevenueImpact == nil) == (slow.RevenueImpact == nil) &&
			(fastE.RevenueImpact == nil || *fastE.RevenueImpact == *slow.RevenueImpact)
		if !same {
			t.Fatalf("decoders differ on %q:\nfast %+v\nslow %+v", b, fastE, slow)
		}
	})
}

func TestValidActivityMatchesPattern(t *testing.T) {
	t.Parallel()
	activityRE := regexp.MustCompile(ActivityPattern)
	for _, s := range []string{"called_tool", "a_b", "a1_b2_c3", "a__b", "_a_b", "a_", "a", "", "A_b", "a_B", "1a_b", "a-b", "a_b_", "ab_1", "a_1b", "é_b"} {
		if got, want := validActivity(s), activityRE.MatchString(s); got != want {
			t.Errorf("validActivity(%q) = %v, regexp says %v", s, got, want)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	e, _ := Normalize(Input{Activity: "called_tool", Features: json.RawMessage(`{"tool":"search","duration_ms":412,"model":"claude-sonnet-4-5"}`)}, defaults())
	rec, _ := Marshal(&e)
	b.Run("fast+validate", func(b *testing.B) {
		for b.Loop() {
			ev, err := Decode(rec)
			if err != nil || Validate(&ev, fixedNow) != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		for b.Loop() {
			if _, err := decodeSlow(rec); err != nil {
				b.Fatal(err)
			}
		}
	})
}
