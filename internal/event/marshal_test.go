package event

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

// marshalRef is Marshal as it was with encoding/json: the reference the
// reflection-free Marshal must match byte for byte.
func marshalRef(e *Event) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		return nil, fmt.Errorf("encode event: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// checkMarshal fails t unless Marshal and AppendMarshal agree with
// marshalRef on e, output and error alike.
func checkMarshal(t *testing.T, e *Event) {
	t.Helper()
	want, werr := marshalRef(e)
	got, gerr := Marshal(e)
	if (werr == nil) != (gerr == nil) || (werr != nil && werr.Error() != gerr.Error()) {
		t.Fatalf("error: got %v, encoding/json %v for %#v", gerr, werr, e)
	}
	if werr != nil {
		if got != nil {
			t.Fatalf("output %q with error %v", got, gerr)
		}
	} else if !bytes.Equal(got, want) {
		t.Fatalf("Marshal differs from encoding/json for %#v:\ngot  %s\nwant %s", e, got, want)
	}
	prefix := []byte("prefix\n")
	got, gerr = AppendMarshal(prefix[:len(prefix):len(prefix)], e)
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("AppendMarshal error %v, encoding/json %v", gerr, werr)
	}
	if werr != nil {
		want = nil
	}
	if !bytes.Equal(got, append(prefix, want...)) {
		t.Fatalf("AppendMarshal: got %q, want %q", got, append(prefix, want...))
	}
}

func TestMarshalMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	f := func(v float64) *float64 { return &v }
	ts := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	zone := time.FixedZone("x", -(3*3600 + 30*60))
	allBytes := make([]byte, 256)
	for i := range allBytes {
		allBytes[i] = byte(i)
	}
	cases := map[string]Event{
		"zero":    {},
		"typical": {ActivityID: "01J", TS: ts, Customer: "c", Activity: "called_tool", Features: json.RawMessage(`{"a":1}`), ReceivedAt: ts, Source: "api"},
		"all": {ActivityID: "id", TS: ts.In(zone), Customer: "c", Activity: "a_b", AnonymousCustomerID: "anon",
			Features: json.RawMessage(`{"b":[1,{"c":"\"}"}],"a":"x<>&\u2028"}`), RevenueImpact: f(-0.0001), Link: "https://x.y/?a=1&b=<2>", ReceivedAt: ts, Source: "cli"},
		"escapes":        {ActivityID: "\"\\\b\f\n\r\t\x00\x01\x1f\x7f<>&", Customer: "\u2028\u2029\u2027", Activity: "\xff\xfe a \xe2\x80", Link: string(allBytes)},
		"unicode":        {Customer: "日本語 français 🎉", Source: "\U0010FFFF"},
		"features space": {Features: json.RawMessage(" { \"a\" : [ 1 , 2 ] }\n")},
		"features empty": {Features: json.RawMessage{}},
		"features bad":   {Features: json.RawMessage(`{"a":}`)},
		"features two":   {Features: json.RawMessage(`{} {}`)},
		"features html":  {Features: json.RawMessage(`{"<":"&\u2028"}`)},
		"features deep":  {Features: json.RawMessage(strings.Repeat("[", 100) + strings.Repeat("]", 100))},
		"year 10000":     {TS: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		"year -1":        {ReceivedAt: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)},
		"zone 24h":       {TS: ts.In(time.FixedZone("", 24*3600))},
		"zone seconds":   {TS: ts.In(time.FixedZone("", 3600+30*60+17))},
		"nan":            {RevenueImpact: f(math.NaN())},
		"inf":            {RevenueImpact: f(math.Inf(-1))},
		"nan and year":   {TS: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), RevenueImpact: f(math.NaN())},
		"local":          {TS: time.Unix(1700000000, 123456789)},
	}
	for _, v := range []float64{0, math.Copysign(0, -1), 1, -1, 0.1, 1e-6, 9.99999e-7, 1e-7, 1e20, 1e21, 123456789e13, 1.5e300,
		5e-324, math.MaxFloat64, -1e-10, 1e-100, 12.5, 100, 1e6} {
		cases[fmt.Sprintf("float %g", v)] = Event{RevenueImpact: f(v)}
	}
	for name, e := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			checkMarshal(t, &e)
		})
	}
}

// FuzzMarshal: Marshal is byte for byte encoding/json's encoding of any
// event, errors included.
func FuzzMarshal(f *testing.F) {
	add := func(e Event, zoneOffset int, hasRevenue bool, revenue float64) {
		f.Add(e.ActivityID, e.TS.Unix(), int64(e.TS.Nanosecond()), zoneOffset, e.Customer, e.Activity, e.AnonymousCustomerID,
			[]byte(e.Features), e.Features == nil, hasRevenue, math.Float64bits(revenue), e.Link, e.ReceivedAt.UnixNano(), e.Source)
	}
	for _, bl := range benchLines {
		in, err := DecodeInput([]byte(bl.line))
		if err != nil {
			f.Fatal(err)
		}
		e, err := Normalize(in, defaults())
		if err != nil {
			f.Fatal(err)
		}
		r := 0.0
		if e.RevenueImpact != nil {
			r = *e.RevenueImpact
		}
		add(e, 0, e.RevenueImpact != nil, r)
	}
	add(Event{ActivityID: "a\u2028\"\\\x01\xff", Features: json.RawMessage(` {"a" :1}`), Link: "<&>"}, 3600, true, 1e-7)
	add(Event{TS: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}, -90061, true, math.NaN())
	add(Event{Features: json.RawMessage(`{"a":[1,2,{"b":"\u00e9\ud83d\ude00"}],"c":-0.5e-10}`)}, 0, true, 1e21)
	f.Fuzz(func(t *testing.T, id string, tsSec, tsNsec int64, zoneOffset int, customer, activity, anon string,
		features []byte, featuresNil, hasRevenue bool, revenueBits uint64, link string, receivedNano int64, source string) {
		ts := time.Unix(tsSec, tsNsec)
		if zoneOffset != 0 {
			ts = ts.In(time.FixedZone("z", zoneOffset%(200*3600)))
		} else {
			ts = ts.UTC()
		}
		e := Event{ActivityID: id, TS: ts, Customer: customer, Activity: activity, AnonymousCustomerID: anon,
			Features: json.RawMessage(features), Link: link, ReceivedAt: time.Unix(0, receivedNano).UTC(), Source: source}
		if featuresNil {
			e.Features = nil
		} else if e.Features == nil {
			e.Features = json.RawMessage{}
		}
		if hasRevenue {
			r := math.Float64frombits(revenueBits)
			e.RevenueImpact = &r
		}
		checkMarshal(t, &e)
	})
}

func TestReceivedAt(t *testing.T) {
	at := time.Date(2026, 11, 26, 15, 30, 1, 123456000, time.UTC)
	e := Event{ActivityID: "a1", TS: at.Add(-time.Hour), Customer: "alice", Activity: "ran_tests",
		// A feature named like the column must not be taken for it.
		Features: json.RawMessage(`{"_received_at":"1999-01-01T00:00:00Z"}`), ReceivedAt: at, Source: SourceMCP}
	b, err := Marshal(&e)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := ReceivedAt(b)
	if !ok || !got.Equal(at) {
		t.Fatalf("ReceivedAt = %v, %v; want %v", got, ok, at)
	}
	for _, bad := range []string{`{}`, `{"_received_at":"yesterday"}`, `{"_received_at":"2026-11-26T15:30:01Z`, ``} {
		if got, ok := ReceivedAt([]byte(bad)); ok {
			t.Errorf("ReceivedAt(%q) = %v, want not found", bad, got)
		}
	}
}
