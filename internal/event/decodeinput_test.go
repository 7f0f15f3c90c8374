package event

import (
	"reflect"
	"testing"
)

// FuzzDecodeInputFast: whatever the fast input decoder accepts, the strict
// encoding/json path decodes to a deeply equal Input (nil and empty
// feature_json, and a missing and a present ts, are told apart).
func FuzzDecodeInputFast(f *testing.F) {
	for _, bl := range benchLines {
		f.Add([]byte(bl.line))
	}
	for _, s := range []string{
		`{"activity_id":"run1-0","ts":"2026-11-25T09:00:00.000001Z","activity":"called_tool","feature_json":{"tool":"search","duration_ms":0},"revenue_impact":-0.0001}`,
		`{"activity":"called_tool","activity_id":"load-1-2","feature_json":{"tool":"activitybi-load","seq":2}}`,
		`{"activity":"called_tool"}`,
		`{}`,
		` { "activity" : "a_b" , "feature_json" : { "x" : [ 1 , { "y" : null } ] } } `,
		`{"activity":"a_b","feature_json":{"k":"日本語 \u00e9 \"q\" \\"},"customer":"ü"}`,
		`{"activity":"a_b","anonymous_customer_id":"anon-1","customer":""}`,
		`{"activity":"a_b","revenue_impact":null,"link":"https://example.com/a?b=c"}`,
		`{"activity":"a_b","revenue_impact":1e400}`,
		`{"activity":"a_b","revenue_impact":-0}`,
		`{"activity":"a_b","ts":null}`,
		`{"activity":"a_b","ts":"2026-11-25T11:00:00+01:00"}`,
		`{"activity":"a_b","ts":"2026-11-25T11:00:00-00:30"}`,
		`{"activity":"a_b","feature_json":null}`,
		`{"activity":"a_b","feature_json":{}}`,
		`{"activity":"a_b","_source":"mcp"}`,
		`{"activity":"a_b","_received_at":"2026-11-25T11:00:00Z"}`,
		`{"activity":"a_b","activity":"c_d"}`,
		`{"activity":"a\u0062_c"}`,
		`{"activity":"a_b"} {}`,
		`{"Activity":"a_b"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		fast, ok := decodeInputFast(line)
		if !ok {
			return
		}
		var slow Input
		if err := strictUnmarshal(line, &slow); err != nil {
			t.Fatalf("fast accepted %q, strict path says %v", line, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("decoders differ on %q:\nfast %#v\nslow %#v", line, fast, slow)
		}
		if got, err := DecodeInput(line); err == nil && !reflect.DeepEqual(got, fast) {
			t.Fatalf("DecodeInput differs from the fast path on %q", line)
		}
	})
}
