package event

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestIsCompactJSON(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{
		`{}`: true, `[]`: true, `{"a":1}`: true, `{"a":[1,-2.5e+3,true,false,null,"x",{}]}`: true,
		`"\u00e9\n\"\\\/"`: true, "\"\xff\"": true, `0`: true, `-0.0E-0`: true,
		strings.Repeat("[", maxCompactDepth) + strings.Repeat("]", maxCompactDepth): true,
		// The innermost [] is not pushed: maxCompactDepth+1 pairs still fit.
		strings.Repeat("[", maxCompactDepth+1) + strings.Repeat("]", maxCompactDepth+1):       true,
		strings.Repeat("[", maxCompactDepth+2) + strings.Repeat("]", maxCompactDepth+2):       false, // valid, left to encoding/json
		strings.Repeat(`{"a":`, maxCompactDepth) + "1" + strings.Repeat("}", maxCompactDepth): true,
		``: false, ` {}`: false, `{} `: false, `{ }`: false, `{"a": 1}`: false, `[1, 2]`: false,
		`{"a":1,}`: false, `[1,]`: false, `{"a"}`: false, `{1:2}`: false, `[1}`: false, `{"a":1]`: false,
		`01`: false, `1.`: false, `.5`: false, `-`: false, `1e`: false, `+1`: false, `tru`: false, `nul`: false,
		`"\x"`: false, `"\u12"`: false, `"\u12g4"`: false, "\"\x01\"": false, `"abc`: false, `{}{}`: false,
		`[1]x`: false, `{"a":1}}`: false, `]`: false, `}`: false,
	} {
		if got := isCompactJSON([]byte(s)); got != want {
			t.Errorf("isCompactJSON(%q) = %v, want %v", s, got, want)
		}
		if want && !json.Valid([]byte(s)) {
			t.Errorf("test case %q is not valid JSON", s)
		}
	}
}

// FuzzIsCompactJSON: whatever isCompactJSON accepts is valid JSON that
// json.Compact leaves unchanged; and it accepts every such value that is not
// nested too deeply for it.
func FuzzIsCompactJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":[1,2,{"b":null}],"c":"\u2028\"x"}`, `[1, 2]`, `{"a":1e400}`, `"\xff"`, `[[[]]]`, `-0.5E+10`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var buf bytes.Buffer
		err := json.Compact(&buf, b)
		compact := err == nil && bytes.Equal(buf.Bytes(), b)
		got := isCompactJSON(b)
		if got && !compact {
			t.Fatalf("isCompactJSON accepted %q: json.Compact gives %q, %v", b, buf.Bytes(), err)
		}
		if end := compactValueEnd(b, 0); end >= 0 {
			var vbuf bytes.Buffer
			if err := json.Compact(&vbuf, b[:end]); err != nil || !bytes.Equal(vbuf.Bytes(), b[:end]) {
				t.Fatalf("compactValueEnd(%q) = %d, but json.Compact of the value gives %q, %v", b, end, vbuf.Bytes(), err)
			}
		}
		if !got && compact && bytes.Count(b, []byte("["))+bytes.Count(b, []byte("{")) <= maxCompactDepth {
			t.Fatalf("isCompactJSON refused compact JSON %q", b)
		}
	})
}
