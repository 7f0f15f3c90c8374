package event

import "testing"

func BenchmarkIngestLine(b *testing.B) {
	line := []byte(`{"activity_id":"e123","ts":"2026-11-25T10:00:00.123000Z","activity":"called_tool","feature_json":{"tool":"search","duration_ms":412}}`)
	d := defaults()
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
}
