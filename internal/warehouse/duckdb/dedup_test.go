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
