package spool

import (
	"bytes"
	"errors"
	"hash/crc32"
	"strings"
	"testing"
)

func TestRecordFormat(t *testing.T) {
	t.Parallel()
	line := appendRecord(nil, "event", []byte(`{"a":1}`))
	body := `"kind":"event","data":{"a":1}}`
	want := `{"crc":"` + hex8(crc32.Checksum([]byte(body), crc32.MakeTable(crc32.Castagnoli))) + `",` + body + "\n"
	if string(line) != want {
		t.Fatalf("record:\n got %q\nwant %q", line, want)
	}
	if len(line) != recordLen("event", []byte(`{"a":1}`)) {
		t.Fatalf("recordLen = %d, encoded %d", recordLen("event", []byte(`{"a":1}`)), len(line))
	}
	kind, payload, reason := parseRecord(line[:len(line)-1])
	if reason != "" || string(kind) != "event" || string(payload) != `{"a":1}` {
		t.Fatalf("parse: %q %q %q", kind, payload, reason)
	}
	// The example in docs/spool-format.md.
	doc := `{"crc":"f1a7e3e7","kind":"event","data":{"activity_id":"01JD3Q8V7Z6XKJ2M4N5P6Q7R8S","ts":"2026-11-25T22:44:01Z","customer":"alice","activity":"called_tool","feature_json":{"tool":"submit_query"}}}`
	if got := appendRecord(nil, "event", []byte(doc[len(`{"crc":"f1a7e3e7","kind":"event","data":`):len(doc)-1])); string(got) != doc+"\n" {
		t.Fatalf("documented example:\n got %s\nwant %s", got, doc)
	}
}

func hex8(v uint32) string {
	const digits = "0123456789abcdef"
	b := make([]byte, 8)
	for i := 7; i >= 0; i-- {
		b[i] = digits[v&0xf]
		v >>= 4
	}
	return string(b)
}

func TestCheckInput(t *testing.T) {
	t.Parallel()
	kinds := map[string]bool{
		"event": true, "a": true, "log_insight": true, "_": true, strings.Repeat("k", 32): true,
		"": false, "Event": false, "ev-ent": false, "ev1": false, `ev"`: false, strings.Repeat("k", 33): false,
	}
	for k, ok := range kinds {
		if err := checkKind(k); (err == nil) != ok {
			t.Errorf("checkKind(%q) = %v, want ok=%v", k, err, ok)
		} else if err != nil && !errors.Is(err, ErrInvalidRecord) {
			t.Errorf("checkKind(%q) error %v does not match ErrInvalidRecord", k, err)
		}
	}
	payloads := map[string]bool{
		`{}`: true, `{"a":"b"}`: true, `{"a":[1,2,{"b":null}]}`: true,
		``: false, `{`: false, `}`: false, `[1]`: false, `"s"`: false, `{"a":1}` + "\n": false,
		"{\"a\":\n1}": false, ` {}`: false, `{} `: false,
	}
	for p, ok := range payloads {
		if err := checkPayload([]byte(p)); (err == nil) != ok {
			t.Errorf("checkPayload(%q) = %v, want ok=%v", p, err, ok)
		} else if err != nil && !errors.Is(err, ErrInvalidRecord) {
			t.Errorf("checkPayload(%q) error %v does not match ErrInvalidRecord", p, err)
		}
	}
	if err := checkPayload(append(append([]byte("{\"a\":\""), bytes.Repeat([]byte("x"), MaxPayloadLen)...), "\"}"...)); err == nil {
		t.Error("oversized payload accepted")
	}
}

func TestParseRecordReasons(t *testing.T) {
	t.Parallel()
	good := string(appendRecord(nil, "event", []byte(`{"a":1}`)))
	good = good[:len(good)-1]
	// forge frames a line with a correct checksum around an arbitrary body.
	forge := func(body string) string {
		return `{"crc":"` + hex8(crc32.Checksum([]byte(body), castagnoli)) + `",` + body
	}
	tests := map[string]struct {
		line   string
		reason string
	}{
		"good":              {good, ""},
		"empty":             {"", ReasonEmptyLine},
		"short":             {`{"crc":"00000000",}`, ReasonShort},
		"bad prefix":        {strings.Replace(good, `{"crc"`, `{"CRC"`, 1), ReasonPrefix},
		"uppercase crc":     {good[:8] + strings.ToUpper(good[8:16]) + good[16:], ReasonCRCField},
		"non-hex crc":       {good[:8] + "zzzzzzzz" + good[16:], ReasonCRCField},
		"no comma":          {good[:16] + `"x` + good[18:], ReasonCRCField},
		"checksum":          {strings.Replace(good, `"a":1`, `"a":2`, 1), ReasonChecksum},
		"zeros":             {strings.Repeat("\x00", len(good)), ReasonPrefix},
		"no kind field":     {forge(`"kinx":"event","data":{"a":1}}`), ReasonKindField},
		"unterminated kind": {forge(`"kind":"eventdata{a:1}}`), ReasonKindField},
		"bad kind":          {forge(`"kind":"Event","data":{"a":1}}`), ReasonKind},
		"empty kind":        {forge(`"kind":"","data":{"a":1}}`), ReasonKind},
		"no data field":     {forge(`"kind":"event","dat":{"a":1}}`), ReasonDataField},
		"array payload":     {forge(`"kind":"event","data":[1,2]}`), ReasonPayload},
		"no closing brace":  {forge(`"kind":"event","data":{"a":1}`), ReasonPayload},
		"tiny payload":      {forge(`"kind":"event","data":{}`), ReasonPayload},
		"nothing after":     {forge(`"kind":"event","data":`), ReasonPayload},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, _, reason := parseRecord([]byte(tc.line))
			if reason != tc.reason {
				t.Fatalf("parseRecord(%q) reason %q, want %q", tc.line, reason, tc.reason)
			}
		})
	}
}

func TestAppendRecordNoAlloc(t *testing.T) {
	buf := make([]byte, 0, 1024)
	p := []byte(`{"activity_id":"01JD","ts":"2026-01-01T00:00:00Z"}`)
	if n := testing.AllocsPerRun(100, func() { buf = appendRecord(buf[:0], "event", p) }); n != 0 {
		t.Fatalf("appendRecord allocates %v times", n)
	}
}

// FuzzRecordRoundTrip: every accepted kind and payload encodes to a line
// that parses back to the same kind and payload, and a flipped bit anywhere
// in the line is detected.
func FuzzRecordRoundTrip(f *testing.F) {
	f.Add("event", []byte(`{"a":1}`), uint(3))
	f.Add("log_insight", []byte(`{"s":"\u2028 \"}\" ,\"data\":"}`), uint(40))
	f.Add("k", []byte(`{}`), uint(0))
	f.Fuzz(func(t *testing.T, kind string, payload []byte, flip uint) {
		if checkKind(kind) != nil || checkPayload(payload) != nil {
			return
		}
		line := appendRecord(nil, kind, payload)
		if len(line) != recordLen(kind, payload) || line[len(line)-1] != '\n' || bytes.IndexByte(line[:len(line)-1], '\n') >= 0 {
			t.Fatalf("bad framing %q", line)
		}
		k, p, reason := parseRecord(line[:len(line)-1])
		if reason != "" || string(k) != kind || !bytes.Equal(p, payload) {
			t.Fatalf("round trip of %q %q: %q %q %q", kind, payload, k, p, reason)
		}
		bit := flip % uint(8*(len(line)-1))
		line[bit/8] ^= 1 << (bit % 8)
		if _, _, reason := parseRecord(line[:len(line)-1]); reason == "" {
			t.Fatalf("bit flip %d not detected in %q", bit, line)
		}
	})
}
