package event

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf16"
)

// A \u escape of half a UTF-16 surrogate pair is valid JSON to
// encoding/json, which decodes it as U+FFFD, but the warehouse's JSON type
// refuses the whole value (DuckDB: "Malformed JSON ... no low surrogate in
// string"). An event or insight carrying one was acknowledged, then
// refused by the warehouse and quarantined: it must be refused when it
// arrives, naming the field.
func TestLoneSurrogateRefused(t *testing.T) {
	t.Parallel()
	bad := []string{
		`{"a":"\ud800"}`, `{"a":"x\uDBFFy"}`, `{"a":"\udc00"}`, `{"a":["\uDFFF"]}`,
		`{"\ud800":1}`, `{"a":"\ud800\u0041"}`, `{"a":"\ud800\ud800"}`, `{"a":"\udc00\ud800"}`,
		`{ "a" : "\\\ud800" }`,
	}
	good := []string{
		`{"a":"\ud83d\ude00"}`, `{"a":"\uDBFF\uDFFF"}`, `{"a":"\\ud800"}`, `{"a":"\\\\ud800"}`,
		`{"a":"\u0041\u00e9\uffff"}`, `{"a":"\"\ud83d\ude00\\"}`, `{"a":"😀"}`,
	}
	for _, f := range bad {
		in, err := DecodeInput([]byte(`{"activity":"called_tool","feature_json":` + f + `}`))
		if err != nil {
			t.Fatalf("%s: decode: %v", f, err)
		}
		if _, err := Normalize(in, defaults()); err == nil || !IsValidation(err) || !strings.Contains(err.Error(), "feature_json: ") || !strings.Contains(err.Error(), "surrogate") {
			t.Errorf("feature_json %s: Normalize = %v, want a feature_json error about the surrogate", f, err)
		}
		// A record already in the spool is refused by Validate (the
		// uploader quarantines it with the reason), not by the warehouse.
		e := Event{ActivityID: "a", TS: fixedNow, Customer: "c", Activity: "called_tool", Features: json.RawMessage(f),
			ReceivedAt: fixedNow, Source: SourceCLI}
		if err := Validate(&e, fixedNow); err == nil || !strings.Contains(err.Error(), "feature_json: ") || !strings.Contains(err.Error(), "surrogate") {
			t.Errorf("feature_json %s: Validate = %v", f, err)
		}
	}
	for _, v := range append(bad, `"\ud800"`, `"x\udc00"`) {
		if _, err := NormalizeInsight(InsightInput{Subject: "user", Metric: "m", Value: json.RawMessage(v)}, insightDefaults()); err == nil || !strings.Contains(err.Error(), "value: ") || !strings.Contains(err.Error(), "surrogate") {
			t.Errorf("insight value %s: NormalizeInsight = %v", v, err)
		}
	}
	for _, f := range good {
		e, err := Normalize(Input{Activity: "called_tool", Features: json.RawMessage(f)}, defaults())
		if err != nil {
			t.Errorf("feature_json %s refused: %v", f, err)
			continue
		}
		if err := Validate(&e, fixedNow); err != nil {
			t.Errorf("feature_json %s: Validate = %v", f, err)
		}
		if _, err := NormalizeInsight(InsightInput{Subject: "user", Metric: "m", Value: json.RawMessage(f)}, insightDefaults()); err != nil {
			t.Errorf("insight value %s refused: %v", f, err)
		}
	}
}

// jsonEscape matches one escape sequence; in valid JSON every backslash
// starts one, so FindAll tokenises the escapes left to right.
var jsonEscape = regexp.MustCompile(`\\(u[0-9a-fA-F]{4}|.)`)

// pairedSurrogatesRef is the reference for the check: every \u escape of a
// surrogate in the valid JSON text b is a high one directly followed by a
// low one.
func pairedSurrogatesRef(b []byte) bool {
	locs := jsonEscape.FindAllIndex(b, -1)
	for i := 0; i < len(locs); i++ {
		esc := b[locs[i][0]:locs[i][1]]
		if len(esc) != 6 {
			continue
		}
		r, _ := strconv.ParseUint(string(esc[2:]), 16, 32)
		if !utf16.IsSurrogate(rune(r)) {
			continue
		}
		if i+1 >= len(locs) || locs[i+1][0] != locs[i][1] || locs[i+1][1]-locs[i+1][0] != 6 {
			return false
		}
		r2, _ := strconv.ParseUint(string(b[locs[i+1][0]+2:locs[i+1][1]]), 16, 32)
		if utf16.DecodeRune(rune(r), rune(r2)) == utf16.DecodeRune(0xd800, 0) { // U+FFFD: not a pair
			return false
		}
		i++
	}
	return true
}

// FuzzLoneSurrogate: on valid JSON, loneSurrogate agrees with the
// reference.
func FuzzLoneSurrogate(f *testing.F) {
	for _, s := range []string{`{"a":"\ud800"}`, `"\ud83d\ude00"`, `"\\ud800"`, `["\udbff\udfff","\udc00"]`, `"\ud800\\u0041"`, `{"\\":"\ud83d\ude00\ud83d"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !json.Valid(b) {
			return
		}
		got, want := loneSurrogate(b) < 0, pairedSurrogatesRef(b)
		if got != want {
			t.Fatalf("loneSurrogate(%s) = %d, reference says paired = %v", b, loneSurrogate(b), want)
		}
	})
}
