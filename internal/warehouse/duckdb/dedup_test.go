package duckdb

import (
	"testing"
	"time"

	"github.com/activitybi/activitybi/internal/event"
)

// dedupBatch keeps the first event of each (customer, activity_id),
// normalizes times to UTC microseconds without touching the caller's
// events, and copies only events whose times need it.
func TestDedupBatch(t *testing.T) {
	utc := time.Date(2026, 11, 26, 12, 0, 0, 123456000, time.UTC)
	paris := time.FixedZone("CET", 3600)
	evs := []event.Event{
		{Customer: "a", ActivityID: "1", TS: utc, ReceivedAt: utc, Activity: "x_y"},
		{Customer: "a", ActivityID: "1", TS: utc.Add(time.Second), ReceivedAt: utc, Activity: "second_copy"}, // repeat: dropped
		{Customer: "b", ActivityID: "1", TS: utc.Add(789).In(paris), ReceivedAt: utc.In(paris), Activity: "x_y"},
		{Customer: "a", ActivityID: "2", TS: utc, ReceivedAt: time.Now(), Activity: "x_y"}, // monotonic reading
	}
	before := append([]event.Event(nil), evs...)
	out := dedupBatch(evs)
	if len(out) != 3 {
		t.Fatalf("%d events, want 3", len(out))
	}
	if out[0] != &evs[0] {
		t.Error("an event already in warehouse form was copied")
	}
	if out[0].Activity != "x_y" || out[1].Customer != "b" || out[2].ActivityID != "2" {
		t.Fatalf("wrong events kept: %+v", out)
	}
	for i, e := range out {
		for _, ts := range []time.Time{e.TS, e.ReceivedAt} {
			if ts.Location() != time.UTC || ts.Nanosecond()%1000 != 0 || ts != ts.Round(0) {
				t.Errorf("event %d: time %v not in warehouse form", i, ts)
			}
		}
	}
	if !out[1].TS.Equal(utc) || out[1] == &evs[2] {
		t.Errorf("event b/1: ts %v (want %v), copied %v", out[1].TS, utc, out[1] != &evs[2])
	}
	for i := range evs {
		if evs[i].TS != before[i].TS || evs[i].ReceivedAt != before[i].ReceivedAt {
			t.Errorf("caller's event %d was modified", i)
		}
	}
}

// BenchmarkDedupBatch: dedupBatch on a 20,000-event batch decoded as from
// the spool (times already UTC microseconds), beside the version before
// commit 1f02f45 that copied every event (CopyAll), in one run:
//
//	go test -run '^$' -bench DedupBatch -count 5 ./internal/warehouse/duckdb/
func BenchmarkDedupBatch(b *testing.B) {
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	evs := make([]event.Event, 20_000)
	for i := range evs {
		ts := t0.Add(time.Duration(i) * time.Millisecond)
		evs[i] = event.Event{Customer: "customer-" + string(rune('a'+i%26)), ActivityID: "01JDX" + time.Duration(i).String(),
			Activity: "called_tool", TS: ts, ReceivedAt: ts, Features: []byte(`{"tool":"x"}`), Source: "mcp"}
	}
	for _, v := range []struct {
		name string
		f    func([]event.Event) []*event.Event
	}{{"Pointers", dedupBatch}, {"CopyAll", dedupBatchCopyAll}} {
		b.Run(v.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if out := v.f(evs); len(out) != len(evs) {
					b.Fatalf("%d events", len(out))
				}
			}
		})
	}
}

// dedupBatchCopyAll is dedupBatch as it was before 1f02f45, for the
// benchmark above.
func dedupBatchCopyAll(evs []event.Event) []*event.Event {
	cp := make([]event.Event, 0, len(evs))
	seen := make(map[[2]string]struct{}, len(evs))
	for i := range evs {
		k := [2]string{evs[i].Customer, evs[i].ActivityID}
		if _, dup := seen[k]; dup {
			continue
		}
		seen[k] = struct{}{}
		e := evs[i]
		e.TS = e.TS.UTC().Truncate(time.Microsecond)
		e.ReceivedAt = e.ReceivedAt.UTC().Truncate(time.Microsecond)
		cp = append(cp, e)
	}
	out := make([]*event.Event, len(cp))
	for i := range cp {
		out[i] = &cp[i]
	}
	return out
}
