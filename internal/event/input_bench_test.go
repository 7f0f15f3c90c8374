package event

import "testing"

// benchLines are the shapes POST /v1/events sees: the load tool's default
// record, the e2e test's writeEvents line, and a fuller one with every
// column, nested features and non-ASCII text.
var benchLines = []struct{ name, line string }{
	{"load", `{"activity":"called_tool","activity_id":"load-7f3a-12345","feature_json":{"tool":"activitybi-load","seq":12345}}`},
	{"typical", `{"activity_id":"run1-417","ts":"2026-11-25T10:00:00.123456Z","activity":"called_tool","feature_json":{"tool":"read_file","duration_ms":417},"revenue_impact":-0.0001}`},
	{"full", `{"activity_id":"req-2026-11-25-0042","ts":"2026-11-25T11:00:00.1234567+01:00","customer":"acme-corp","activity":"submitted_prompt","anonymous_customer_id":"anon-7c9e","feature_json":{"model":"claude-sonnet-4-5","input_tokens":1834,"output_tokens":412,"tools":["search","read_file","bash"],"ctx":{"repo":"activitybi","branch":"main","dirty":false,"lang":"日本語 / français"},"cost_usd":0.0123},"revenue_impact":12.5,"link":"https://example.com/runs/42?tab=trace"}`},
}

func BenchmarkDecodeInput(b *testing.B) {
	for _, bl := range benchLines {
		line := []byte(bl.line)
		b.Run(bl.name, func(b *testing.B) {
			b.SetBytes(int64(len(line)))
			for b.Loop() {
				if _, err := DecodeInput(line); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkNormalize(b *testing.B) {
	d := defaults()
	for _, bl := range benchLines {
		in, err := DecodeInput([]byte(bl.line))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bl.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := Normalize(in, d); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkMarshal(b *testing.B) {
	for _, bl := range benchLines {
		in, err := DecodeInput([]byte(bl.line))
		if err != nil {
			b.Fatal(err)
		}
		e, err := Normalize(in, defaults())
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bl.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := Marshal(&e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkIngestLine is the per-line work of POST /v1/events: decode,
// normalize, encode for the spool.
func BenchmarkIngestLine(b *testing.B) {
	d := defaults()
	for _, bl := range benchLines {
		line := []byte(bl.line)
		b.Run(bl.name, func(b *testing.B) {
			b.SetBytes(int64(len(line)))
			for b.Loop() {
				in, err := DecodeInput(line)
				if err != nil {
					b.Fatal(err)
				}
				e, err := Normalize(in, d)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := Marshal(&e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
