package duckdb

import (
	"database/sql/driver"
	goUnsafe "unsafe"

	"github.com/activitybi/activitybi/internal/event"
	"github.com/activitybi/activitybi/internal/warehouse"
)

// Work done ahead: a Load holds writeMu from its first statement to its
// COMMIT, and the Go work it used to do there (dedup, grouping the batch by
// partition and sorting each group, turning every value into the
// driver.Value the appender takes) depends on the batch alone. In a CPU
// profile of a 1M-event drain that work was ~0.6 s of the ~5.8 s the
// drain's loads took back to back (bench/README.md, "Session 12"). Prepare
// does it for a batch before Load is called: the uploader calls it on the
// batch it builds ahead while the previous batch commits, so the work runs
// on the other CPU. What needs the stored state (the partitions' counts and
// last rows, read from db.parts) stays in Load, under the lock.

// appendWidth is the number of values per appended row (appendColumns);
// occSlot and repSlot are the two that Load fills from the occurrence plan.
const (
	appendWidth = 12
	occSlot     = 8
	repSlot     = 9
)

// preparedBatch is the part of a Load that depends only on the batch.
type preparedBatch struct {
	// events is the Batch.Events it was made from; Load uses the
	// preparation only if the batch still holds that same slice.
	events []event.Event
	evs    []*event.Event // dedupBatch(events)
	rows   *preparedRows
}

// preparedRows are events ready to append: grouped by partition and
// their appender values, appendWidth per event, the occurrence slots left
// to the load.
type preparedRows struct {
	groups []partGroup
	vals   []driver.Value
}

// Prepare does the part of a Load of b that needs neither the writer
// connection nor the stored state — dedup of the events, grouping them by
// partition in (ts, activity_id) order, converting their values for the
// appender — and keeps it in b.Prepared for Load. It does not take writeMu,
// so it may run while another batch loads; b must not be used by anyone
// else meanwhile. A Load of a batch whose Events slice was replaced after
// Prepare (the uploader does that when it quarantines a rejected record)
// ignores b.Prepared and does the work itself; what a Load stores never
// depends on whether Prepare ran.
func (db *DB) Prepare(b *warehouse.Batch) {
	b.Prepared = prepareBatch(b.Events)
}

func prepareBatch(events []event.Event) *preparedBatch {
	evs := dedupBatch(events)
	return &preparedBatch{events: events, evs: evs, rows: prepareRows(evs)}
}

// prepareRows groups evs and converts their values. Every event must be
// new (deduplicated and, as far as known, not stored).
func prepareRows(evs []*event.Event) *preparedRows {
	vals := make([]driver.Value, appendWidth*len(evs))
	for i, e := range evs {
		eventValues(vals[i*appendWidth:(i+1)*appendWidth], e)
	}
	return &preparedRows{groups: groupPartitions(evs), vals: vals}
}

// preparedFor returns b's preparation if Prepare made it from the events b
// holds now, else makes one.
func preparedFor(b *warehouse.Batch) *preparedBatch {
	if p, ok := b.Prepared.(*preparedBatch); ok && sameSlice(p.events, b.Events) {
		return p
	}
	return prepareBatch(b.Events)
}

// sameSlice reports whether a and b are the same slice (same array, same
// length).
func sameSlice(a, b []event.Event) bool {
	return len(a) == len(b) && goUnsafe.SliceData(a) == goUnsafe.SliceData(b)
}

// emptyObject is feature_json for an event without features. The appender
// only reads it.
var emptyObject = []byte("{}")

// eventValues sets dst (appendWidth values, in appendColumns order) to e's
// values; the occurrence slots are left as they are.
func eventValues(dst []driver.Value, e *event.Event) {
	dst[0] = e.ActivityID
	dst[1] = e.TS
	dst[2] = e.Customer
	dst[3] = e.Activity
	dst[4] = nullString(e.AnonymousCustomerID)
	// As []byte, not string: the appender copies either into DuckDB's
	// vector with the same C call, and a string would be one more copy of
	// every feature_json (the event owns its bytes; event.Decode copies
	// them out of the read buffer).
	if f := e.Features; len(f) > 0 {
		dst[5] = []byte(f)
	} else {
		dst[5] = emptyObject
	}
	if e.RevenueImpact != nil {
		dst[6] = *e.RevenueImpact
	} else {
		dst[6] = nil
	}
	dst[7] = nullString(e.Link)
	dst[10] = e.ReceivedAt
	dst[11] = e.Source
}

// setOccurrence sets the occurrence slots of dst from r.
func setOccurrence(dst []driver.Value, r *stageRow) {
	if r.occ > 0 {
		dst[occSlot] = r.occ
	} else {
		dst[occSlot] = nil
	}
	if r.rep.IsZero() {
		dst[repSlot] = nil
	} else {
		dst[repSlot] = r.rep
	}
}
