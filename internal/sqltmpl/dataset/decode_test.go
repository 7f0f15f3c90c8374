package dataset

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

const ok = `{"cohort":{"activity":"submitted_prompt"}`

// sp wraps a cohort body (after activity) into a spec.
func sp(cohortRest string) string {
	return `{"cohort":{"activity":"submitted_prompt"` + cohortRest + `}}`
}

// ap wraps one append object into a spec.
func ap(appendBody string) string {
	return ok + `,"append":[` + appendBody + `]}`
}

func fl(filter string) string { return sp(`,"filters":[` + filter + `]`) }

// TestDecodeBadInput pins the message for each kind of bad input: what is
// wrong, where (JSON path), and what is accepted.
func TestDecodeBadInput(t *testing.T) {
	t.Parallel()
	const pre = "invalid dataset spec: "
	rels := strings.Join(Relationships(), ", ")
	cases := []struct{ name, in, want string }{
		// JSON itself.
		{"empty", ``, `invalid JSON: unexpected end of input`},
		{"truncated", `{"cohort":{"activity":"submitted_prompt"`, `invalid JSON: unexpected end of input`},
		{"syntax", `{"cohort":{"activity":"submitted_prompt",}}`, `invalid JSON at byte 41: invalid character '}' looking for beginning of object key string`},
		{"trailing data", ok + `} x`, `invalid JSON: unexpected data after the spec object at byte 43`},
		{"two objects", ok + `}{}`, `invalid JSON: unexpected data after the spec object at byte 43`},
		{"not UTF-8", "{\"cohort\":{\"activity\":\"submitted_prompt\xff\"}}", `the spec is not valid UTF-8`},
		{"null", `null`, `spec: must be an object, got null`},
		{"array", `[]`, `spec: must be an object, got array`},
		{"duplicate key", `{"cohort":{"activity":"a","activity":"b"}}`, `cohort.activity: duplicate key (each field may appear once)`},

		// Fields.
		{"no cohort", `{}`, `cohort: required: an object such as {"activity": "submitted_prompt"}`},
		{"field names are case-sensitive", `{"Cohort":{"activity":"submitted_prompt"}}`,
			`Cohort: unknown field (known: cohort, append, limit); cohort: required: an object such as {"activity": "submitted_prompt"}`},
		{"unknown cohort field", sp(`,"occurence":"first"`), `cohort.occurence: unknown field (known: activity, occurrence, nth, from, to, filters, features)`},
		{"unknown filter field", fl(`{"feature":"model","op":"eq","value":"x","extra":1}`), `cohort.filters[0].extra: unknown field (known: feature, op, value)`},
		{"unknown append field", ap(`{"activity":"called_tool","relationship":"first_after","feature":["x"]}`),
			`append[0].feature: unknown field (known: activity, relationship, features, aggregate, of, filters, as)`},
		{"hostile key is quoted", `{"cohort":{"activity":"submitted_prompt","a.b\"c":1}}`, `cohort."a.b\"c": unknown field (known: activity, occurrence, nth, from, to, filters, features)`},
		{"cohort not an object", `{"cohort":"submitted_prompt"}`, `cohort: must be an object, got string`},
		{"activity type", `{"cohort":{"activity":1}}`, `cohort.activity: must be a string, got number`},
		{"activity empty", `{"cohort":{"activity":""}}`, `cohort.activity: required: an activity name (verb_noun, e.g. called_tool)`},
		{"activity form", `{"cohort":{"activity":"Submitted Prompt"}}`,
			`cohort.activity: "Submitted Prompt" is not an activity name (verb_noun: lowercase letters and digits in words joined by _, e.g. called_tool)`},

		// Occurrence.
		{"occurrence", sp(`,"occurrence":"second"`), `cohort.occurrence: unknown occurrence "second" (one of: all, first, last, nth)`},
		{"nth missing", sp(`,"occurrence":"nth"`), `cohort.nth: required for occurrence "nth": an integer from 1 to 1000000`},
		{"nth negative", sp(`,"occurrence":"nth","nth":-1`), `cohort.nth: must be between 1 and 1000000 for occurrence "nth", got -1`},
		{"nth too big", sp(`,"occurrence":"nth","nth":1000001`), `cohort.nth: must be between 1 and 1000000 for occurrence "nth", got 1000001`},
		{"nth without nth", sp(`,"nth":2`), `cohort.nth: is only used with occurrence "nth"; occurrence is "all"`},
		{"nth string", sp(`,"occurrence":"nth","nth":"2"`), `cohort.nth: must be an integer, got string`},
		{"nth fraction", sp(`,"occurrence":"nth","nth":2.5`), `cohort.nth: must be an integer, got 2.5`},
		{"nth overflow", sp(`,"occurrence":"nth","nth":99999999999999999999`), `cohort.nth: must be between 1 and 1000000 for occurrence "nth", got 99999999999999999999`},
		{"nth beyond int32", sp(`,"occurrence":"nth","nth":4294967296`), `cohort.nth: must be between 1 and 1000000 for occurrence "nth", got 4294967296`},
		{"nth below int32", sp(`,"occurrence":"nth","nth":-4294967296`), `cohort.nth: must be between 1 and 1000000 for occurrence "nth", got -4294967296`},

		// Window.
		{"from text", sp(`,"from":"yesterday"`), `cohort.from: "yesterday" is not an RFC 3339 timestamp (e.g. 2026-03-01T00:00:00Z)`},
		{"from number", sp(`,"from":1700000000`), `cohort.from: must be an RFC 3339 timestamp string (e.g. 2026-03-01T00:00:00Z), got number`},
		{"from before 1970", sp(`,"from":"0001-01-01T00:00:00Z"`), `cohort.from: 0001-01-01T00:00:00Z is out of range (1970-01-01 to 9999-12-31)`},
		{"to before from", sp(`,"from":"2026-03-02T00:00:00Z","to":"2026-03-01T00:00:00Z"`), `cohort.to: must be after cohort.from (from is inclusive, to exclusive)`},
		{"empty window", sp(`,"from":"2026-03-01T01:00:00+01:00","to":"2026-03-01T00:00:00Z"`), `cohort.to: must be after cohort.from (from is inclusive, to exclusive)`},

		// Features.
		{"features not a list", sp(`,"features":"model"`), `cohort.features: must be an array of strings, got string`},
		{"features, all problems at their own index", sp(`,"features":["model",1,"a-b","ts","model"]`),
			`cohort.features[1]: must be a string, got number; ` +
				`cohort.features[2]: "a-b" is not a feature key (letters, digits and _, not starting with a digit, at most 64); ` +
				`cohort.features[3]: column "ts" is already taken by the dataset's own columns; column names must be unique (a cohort feature is named by its key; activity_id, ts and customer are always columns); ` +
				`cohort.features[4]: column "model" is already taken by cohort.features[0]; column names must be unique (a cohort feature is named by its key; activity_id, ts and customer are always columns)`},
		{"feature names are compared case-insensitively", sp(`,"features":["Model","model"]`),
			`cohort.features[1]: column "model" is already taken by cohort.features[0]; column names must be unique (a cohort feature is named by its key; activity_id, ts and customer are always columns)`},

		// Filters.
		{"filters not a list", sp(`,"filters":{}`), `cohort.filters: must be an array of filter objects, got object`},
		{"filter not an object", sp(`,"filters":["model=x",{"feature":"","op":"eq","value":1}]`),
			`cohort.filters[0]: must be an object, got string; cohort.filters[1].feature: must not be empty: a feature key (letters, digits and _, not starting with a digit)`},
		{"op unknown", fl(`{"feature":"model","op":"like","value":"x"}`), `cohort.filters[0].op: unknown operator "like" (one of: eq, ne, gt, gte, lt, lte, contains, in)`},
		{"op missing", fl(`{"feature":"model","value":"x"}`), `cohort.filters[0].op: required: one of eq, ne, gt, gte, lt, lte, contains, in`},
		{"value missing", fl(`{"feature":"model","op":"eq"}`), `cohort.filters[0].value: required: a string, a number or a boolean`},
		{"value null", fl(`{"feature":"model","op":"eq","value":null}`), `cohort.filters[0].value: must be a string, a number, a boolean or (for op "in") an array, got null`},
		{"value object", fl(`{"feature":"model","op":"eq","value":{"a":1}}`), `cohort.filters[0].value: must be a string, a number, a boolean or (for op "in") an array, got object`},
		{"value list for eq", fl(`{"feature":"model","op":"eq","value":["a"]}`), `cohort.filters[0].value: must be a string, a number or a boolean for op "eq", got an array (arrays are for op "in")`},
		{"in with a string", fl(`{"feature":"model","op":"in","value":"a"}`), `cohort.filters[0].value: must be an array of strings or of numbers for op "in", got a string`},
		{"in empty", fl(`{"feature":"model","op":"in","value":[]}`), `cohort.filters[0].value: must hold at least one value for op "in"`},
		{"in mixed", fl(`{"feature":"model","op":"in","value":["a",1]}`), `cohort.filters[0].value: mixes strings and numbers; an "in" list holds one kind`},
		{"in booleans", fl(`{"feature":"model","op":"in","value":["a",true]}`), `cohort.filters[0].value[1]: must be a string or a number, got a boolean`},
		{"gt boolean", fl(`{"feature":"model","op":"gt","value":true}`), `cohort.filters[0].value: must be a string or a number for op "gt", got a boolean`},
		{"contains empty", fl(`{"feature":"model","op":"contains","value":""}`), `cohort.filters[0].value: must not be empty for op "contains"`},
		{"contains number", fl(`{"feature":"model","op":"contains","value":5}`), `cohort.filters[0].value: must be a string for op "contains", got a number`},
		{"number overflow", fl(`{"feature":"model","op":"eq","value":1e999}`), `cohort.filters[0].value: 1e999 is out of range for a number`},
		{"NUL", fl(`{"feature":"model","op":"eq","value":"a\u0000b"}`), `cohort.filters[0].value: must not contain a NUL character`},
		{"revenue_impact is a number", fl(`{"feature":"revenue_impact","op":"eq","value":"x"}`), `cohort.filters[0].value: must be a number for op "eq", got a string`},
		{"revenue_impact in strings", fl(`{"feature":"revenue_impact","op":"in","value":["x"]}`), `cohort.filters[0].value[0]: must be a number: revenue_impact is a number`},
		{"link is text", fl(`{"feature":"link","op":"gt","value":3}`), `cohort.filters[0].value: must be a string for op "gt", got a number`},
		{"contains on revenue_impact", fl(`{"feature":"revenue_impact","op":"contains","value":"3"}`), `cohort.filters[0].op: "contains" cannot be used on revenue_impact`},

		// Appends.
		{"append not a list", ok + `,"append":{}}`, `append: must be an array of append objects, got object`},
		{"append empty object", ap(`{}`), `append[0].activity: required: an activity name (verb_noun, e.g. called_tool); append[0].relationship: required: one of ` + rels},
		{"relationship", ap(`{"activity":"called_tool","relationship":"first_afterwards"}`), `append[0].relationship: unknown relationship "first_afterwards" (one of: ` + rels + `)`},
		{"aggregate on first_after", ap(`{"activity":"called_tool","relationship":"first_after","aggregate":"sum","of":"ms"}`),
			`append[0].aggregate: is for aggregate_* relationships; first_after brings the related row's features; append[0].of: is for aggregate_* relationships; first_after brings the related row's features`},
		{"features on an aggregate", ap(`{"activity":"called_tool","relationship":"aggregate_after","features":["ms"]}`),
			`append[0].features: is for first_* and last_* relationships; aggregate_after brings one aggregate (aggregate, of)`},
		{"aggregate unknown", ap(`{"activity":"called_tool","relationship":"aggregate_after","aggregate":"median","of":"ms"}`),
			`append[0].aggregate: unknown aggregate "median" (one of: count, sum, avg, min, max)`},
		{"sum without of", ap(`{"activity":"called_tool","relationship":"aggregate_after","aggregate":"sum"}`),
			`append[0].of: required for aggregate "sum": revenue_impact or a numeric feature key`},
		{"sum of link", ap(`{"activity":"called_tool","relationship":"aggregate_after","aggregate":"sum","of":"link"}`),
			`append[0].of: link is not a number; aggregate revenue_impact or a numeric feature key`},
		{"of not a key", ap(`{"activity":"called_tool","relationship":"aggregate_after","aggregate":"sum","of":"ms)"}`),
			`append[0].of: "ms)" is not a feature key (letters, digits and _, not starting with a digit, at most 64)`},
		{"same append twice", ap(`{"activity":"called_tool","relationship":"first_after"},{"activity":"called_tool","relationship":"first_after"}`),
			`append[1].as: column "first_after_called_tool_ts" is already taken by append[0].as; column names must be unique (set a different "as")`},
		{"as form", ap(`{"activity":"called_tool","relationship":"first_after","as":"1x"}`),
			`append[0].as: "1x" is not a column prefix (letters, digits and _, not starting with a digit, at most 64)`},
		{"default as too long", ap(`{"activity":"called_tool_with_a_very_long_name_that_goes_on_and_on","relationship":"aggregate_in_between"}`),
			`append[0].as: the default column prefix "aggregate_in_between_called_tool_with_a_"... is longer than 64 characters; set a shorter "as"`},
		{"as against a cohort feature", `{"cohort":{"activity":"submitted_prompt","features":["x_ts"]},"append":[{"activity":"called_tool","relationship":"first_after","as":"x"}]}`,
			`append[0].as: column "x_ts" is already taken by cohort.features[0]; column names must be unique (set a different "as")`},
		{"appended feature against ts", ap(`{"activity":"called_tool","relationship":"first_after","as":"x","features":["ts"]}`),
			`append[0].features[0]: column "x_ts" is already taken by append[0].as; column names must be unique (set a different "as")`},
		{"aggregate column against a cohort feature", `{"cohort":{"activity":"submitted_prompt","features":["n_count"]},"append":[{"activity":"called_tool","relationship":"aggregate_all_ever","as":"n"}]}`,
			`append[0].as: column "n_count" is already taken by cohort.features[0]; column names must be unique (set a different "as")`},

		// Limit.
		{"limit negative", ok + `,"limit":-1}`, `limit: must be between 1 and 100000, got -1 (0 or absent means 1000)`},
		{"limit string", ok + `,"limit":"10"}`, `limit: must be an integer, got string`},
		{"limit beyond int32", ok + `,"limit":4294967296}`, `limit: must be between 1 and 100000, got 4294967296 (0 or absent means 1000)`},
		{"limit beyond int64", ok + `,"limit":99999999999999999999}`, `limit: must be between 1 and 100000, got 99999999999999999999 (0 or absent means 1000)`},
		{"limit below int32", ok + `,"limit":-2147483649}`, `limit: must be between 1 and 100000, got -2147483649 (0 or absent means 1000)`},

		// Every problem at once, in input order.
		{"all at once", `{"cohort":{"activity":"Bad","occurrence":"nth","filters":[{"feature":"a b","op":"eq","value":1}]},"append":[{"activity":"called_tool","relationship":"first_after","as":"$x"}],"limit":0.5,"x":1}`,
			`limit: must be an integer, got 0.5; x: unknown field (known: cohort, append, limit); ` +
				`cohort.activity: "Bad" is not an activity name (verb_noun: lowercase letters and digits in words joined by _, e.g. called_tool); ` +
				`cohort.nth: required for occurrence "nth": an integer from 1 to 1000000; ` +
				`cohort.filters[0].feature: "a b" is not a feature key (letters, digits and _, not starting with a digit, at most 64); ` +
				`append[0].as: "$x" is not a column prefix (letters, digits and _, not starting with a digit, at most 64)`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := Decode([]byte(c.in))
			if err == nil {
				t.Fatalf("Decode(%s) = %s, want an error", c.in, s.Canonical())
			}
			if !errors.Is(err, ErrInvalidSpec) {
				t.Errorf("error does not wrap ErrInvalidSpec: %v", err)
			}
			if got := err.Error(); got != pre+c.want {
				t.Errorf("Decode(%s):\n got %s\nwant %s", c.in, got, pre+c.want)
			}
		})
	}
}

// TestDecodeLimits hits every limit: each is refused with a Problem naming
// it, and Metrics counts it.
func TestDecodeLimits(t *testing.T) {
	t.Parallel()
	rep := func(s string, n int) string { return strings.TrimSuffix(strings.Repeat(s+",", n), ",") }
	bigList := rep(`"v"`, MaxInValues+1)
	cases := []struct {
		name, limit, in, msg string
	}{
		{"bytes", "MaxSpecBytes", sp(`,"features":["` + strings.Repeat("a", MaxSpecBytes) + `"]`),
			fmt.Sprintf("the spec is %d bytes; at most 65536 are accepted", MaxSpecBytes+58)},
		{"depth", "MaxDepth", `{"cohort":{"filters":[{"value":[[[[[1]]]]]}]}}`,
			`cohort.filters[0].value[0][0][0][0]: nested deeper than 8 levels; a spec is at most 6 deep`},
		{"appends", "MaxAppends", ap(rep(`{"activity":"called_tool","relationship":"first_after"}`, MaxAppends+1)),
			`append: 11 appended activities; at most 10 are accepted`},
		{"filters", "MaxFilters", sp(`,"filters":[` + rep(`{"feature":"a","op":"eq","value":1}`, MaxFilters+1) + `]`),
			`cohort.filters: 17 filters; at most 16 are accepted`},
		{"features", "MaxFeatures", ap(`{"activity":"called_tool","relationship":"first_after","features":[` + rep(`"a"`, MaxFeatures+1) + `]}`),
			`append[0].features: 33 features; at most 32 are accepted`},
		{"in values", "MaxInValues", fl(`{"feature":"a","op":"in","value":[` + bigList + `]}`),
			`cohort.filters[0].value: 101 values; at most 100 are accepted`},
		{"value length", "MaxValueLen", fl(`{"feature":"a","op":"eq","value":"` + strings.Repeat("é", 513) + `"}`),
			`cohort.filters[0].value: is 1026 bytes; a filter value is at most 1024`},
		{"name length", "MaxNameLen", `{"cohort":{"activity":"a_` + strings.Repeat("b", 254) + `"}}`,
			`cohort.activity: is 256 bytes; an activity name is at most 255`},
		{"ident length", "MaxIdentLen", sp(`,"features":["` + strings.Repeat("f", 65) + `"]`),
			`cohort.features[0]: is 65 bytes; a feature key is at most 64`},
		{"nth", "MaxNth", sp(`,"occurrence":"nth","nth":1000001`),
			`cohort.nth: must be between 1 and 1000000 for occurrence "nth", got 1000001`},
		{"limit", "MaxLimit", ok + `,"limit":100001}`,
			`limit: must be between 1 and 100000, got 100001 (0 or absent means 1000)`},
	}
	// Values past 32 bits, which the decoder cannot hold, are the same
	// limit hits (above the range) or plain refusals (below it).
	for in, limit := range map[string]string{ok + `,"limit":4294967296}`: "MaxLimit", ok + `,"limit":-4294967296}`: "",
		sp(`,"occurrence":"nth","nth":4294967296`): "MaxNth", sp(`,"occurrence":"nth","nth":99999999999999999999`): "MaxNth"} {
		_, err := Decode([]byte(in))
		var se *SpecError
		if !errors.As(err, &se) || len(se.Problems) != 1 || se.Problems[0].Limit != limit {
			t.Errorf("%s: %v, want one problem counted as limit %q", in, err, limit)
		}
	}
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		_, err := Decode([]byte(c.in))
		var se *SpecError
		if !errors.As(err, &se) {
			t.Fatalf("%s: %v, want a *SpecError", c.name, err)
		}
		if len(se.Problems) != 1 || se.Problems[0].Limit != c.limit || se.Problems[0].String() != c.msg {
			t.Errorf("%s: problems %+v\nwant one: %s (limit %s)", c.name, se.Problems, c.msg, c.limit)
		}
		m.Observe(err)
	}
	m.Observe(nil)
	m.Observe(errors.New("not a spec error"))
	_, err = Decode([]byte(`{}`))
	m.Observe(err) // refused, no limit
	if got := testutil.ToFloat64(m.refused); got != float64(len(cases)+1) {
		t.Errorf("refused = %v, want %d", got, len(cases)+1)
	}
	for _, c := range cases {
		if got := testutil.ToFloat64(m.limits.WithLabelValues(c.limit)); got != 1 {
			t.Errorf("limit %s counted %v times, want 1", c.limit, got)
		}
	}
	// Every limit name is known to Metrics from the start.
	if n := testutil.CollectAndCount(m.limits); n != len(limitNames) || len(limitNames) != len(cases) {
		t.Errorf("%d limit series, %d names, %d cases", n, len(limitNames), len(cases))
	}
	// A second Metrics on the same registry shares the counters.
	m2, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	m2.Observe(err0())
	if got := testutil.ToFloat64(m.refused); got != float64(len(cases)+2) {
		t.Errorf("shared refused = %v", got)
	}
}

func err0() error { _, err := Decode(nil); return err }

// TestDecodeProblemCap: a spec with very many problems lists the first
// ones and counts the rest.
func TestDecodeProblemCap(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString(`{"cohort":{"activity":"submitted_prompt","features":[`)
	for i := 0; i < 30; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"bad-%d"`, i)
	}
	b.WriteString(`]}}`)
	_, err := Decode([]byte(b.String()))
	var se *SpecError
	if !errors.As(err, &se) || len(se.Problems) != maxProblems || se.More != 10 || !strings.HasSuffix(err.Error(), "; and 10 more") {
		t.Fatalf("%v", err)
	}
}

// TestCanonical: equivalent specs decode to the same canonical bytes
// (defaults filled, filters and "in" values sorted, times in UTC, numbers
// in one form), and the canonical form decodes to itself.
func TestCanonical(t *testing.T) {
	t.Parallel()
	const want = `{"cohort":{"activity":"called_tool","occurrence":"nth","nth":2,"from":"2026-03-01T00:00:00Z","to":"2026-03-02T00:00:00.123456Z",` +
		`"filters":[{"feature":"ms","op":"gt","value":10},{"feature":"tool","op":"in","value":["Bash","Read"]}],"features":["tool"]},` +
		`"append":[{"activity":"completed_response","relationship":"aggregate_in_between","aggregate":"count","as":"aggregate_in_between_completed_response"},` +
		`{"activity":"completed_response","relationship":"first_after","features":["tokens"],"as":"next"}],"limit":1000}`
	equivalent := []string{
		want,
		`{"limit":1000,"append":[{"relationship":"aggregate_in_between","activity":"completed_response"},{"as":"next","activity":"completed_response","relationship":"first_after","features":["tokens"]}],
		  "cohort":{"features":["tool"],"nth":2,"occurrence":"nth","activity":"called_tool",
		  "filters":[{"op":"in","feature":"tool","value":["Read","Bash","Read"]},{"feature":"ms","op":"gt","value":1.0e1}],
		  "from":"2026-03-01T01:00:00+01:00","to":"2026-03-02T00:00:00.123456789Z"}}`,
		`{"cohort":{"activity":"called_tool","occurrence":"nth","nth":2,"from":"2026-02-28T19:00:00-05:00","to":"2026-03-02T00:00:00.1234564Z",
		  "filters":[{"feature":"tool","op":"in","value":["Bash","Read"]},{"feature":"ms","op":"gt","value":10}],"features":["tool"]},
		  "append":[{"activity":"completed_response","relationship":"aggregate_in_between","aggregate":"count","as":"aggregate_in_between_completed_response"},
		  {"activity":"completed_response","relationship":"first_after","features":["tokens"],"as":"next"}],"limit":0}`,
	}
	for i, in := range equivalent {
		s, err := Decode([]byte(in))
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		if got := string(s.Canonical()); got != want {
			t.Errorf("%d:\n got %s\nwant %s", i, got, want)
		}
	}
	// Not equivalent: a string is not a number, order of features and
	// appends is column order.
	for _, in := range []string{
		strings.Replace(want, `"value":10`, `"value":"10"`, 1),
		strings.Replace(want, `"features":["tool"]`, `"features":["tool","ms"]`, 1),
		strings.Replace(want, `"limit":1000`, `"limit":999`, 1),
	} {
		s, err := Decode([]byte(in))
		if err != nil {
			t.Fatal(err)
		}
		if string(s.Canonical()) == want {
			t.Errorf("%s has the canonical form of a different spec", in)
		}
	}
	// Defaults only.
	s, err := Decode([]byte(`{"cohort":{"activity":"submitted_prompt"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(s.Canonical()); got != `{"cohort":{"activity":"submitted_prompt","occurrence":"all"},"limit":1000}` {
		t.Errorf("defaults: %s", got)
	}
}
