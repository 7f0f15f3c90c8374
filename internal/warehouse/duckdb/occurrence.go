package duckdb

import (
	"slices"
	"strings"
	"time"

	"github.com/activitybi/activitybi/internal/event"
)

// Occurrence columns are maintained incrementally, per partition
// (customer, activity), in the order (ts, activity_id):
//
//   - _activity_occurrence is the 1-based rank of the row in that order;
//   - _activity_repeated_at is the ts of the next row in that order, NULL for
//     the last row.
//
// stream_partitions keeps, per partition, the row count n and the key
// (last_ts, last_id) of the last row. planOccurrences splits a batch's
// partitions in two:
//
//   - in order: every new row sorts after the stored last row (the normal case
//     for a live stream). The new rows are numbered n+1, n+2, ... in Go, get
//     their repeated_at from the next new row, and the previous last row is
//     the only stored row touched (its repeated_at becomes the first new ts).
//   - late: some new row sorts before the stored last row. Those rows are
//     inserted without occurrence values and the partition is recomputed in
//     SQL from the earliest new ts on (see lateRecompute in load.go).

// partKey names one occurrence partition.
type partKey struct {
	customer, activity string
}

// partState is a stream_partitions row.
type partState struct {
	n       int64
	firstTS time.Time
	lastTS  time.Time
	lastID  string
}

// stageRow is one event to insert with its occurrence values; occ == 0 and a
// zero rep mean NULL.
type stageRow struct {
	ev  *event.Event
	occ int64
	rep time.Time
}

// pointUpdate sets _activity_repeated_at of one stored row, found by its key
// and its ts (the ts lets zonemaps skip every other row group).
type pointUpdate struct {
	customer, activityID string
	ts, rep              time.Time
}

// latePart is a partition that received rows older than its stored last row.
type latePart struct {
	key     partKey
	lower   time.Time // earliest new ts: rows from here on are renumbered
	nBefore int64     // rows stored before this batch
	firstTS time.Time // stored first ts before this batch (bounds the anchor search)
	lastTS  time.Time // stored last ts before this batch
}

// occPlan is what a batch does to the occurrence columns.
type occPlan struct {
	rows []stageRow // in batch order; nil unless asked for
	// bases are, per group of groupPartitions, the partition's stored row
	// count, or -1 for a late partition (see appendQueryPrepared).
	bases    []int64
	prevLast []pointUpdate
	late     []latePart
	after    map[partKey]partState // states after the batch, for touched partitions
}

// keyLess orders rows within a partition.
func keyLess(ts1 time.Time, id1 string, ts2 time.Time, id2 string) bool {
	if c := ts1.Compare(ts2); c != 0 {
		return c < 0
	}
	return id1 < id2
}

// partGroup is one partition's rows of a batch: indexes into the batch's
// events, sorted by (ts, activity_id).
type partGroup struct {
	key partKey
	idx []int
}

// groupPartitions groups evs by partition, in the order each partition
// first appears, and sorts each group by (ts, activity_id). It depends on
// the batch alone, so Prepare runs it ahead of the load.
func groupPartitions(evs []*event.Event) []partGroup {
	pos := make(map[partKey]int)
	var groups []partGroup
	for i, e := range evs {
		k := partKey{e.Customer, e.Activity}
		g, ok := pos[k]
		if !ok {
			g = len(groups)
			pos[k] = g
			groups = append(groups, partGroup{key: k})
		}
		groups[g].idx = append(groups[g].idx, i)
	}
	for _, g := range groups {
		slices.SortFunc(g.idx, func(a, b int) int {
			ea, eb := evs[a], evs[b]
			if c := ea.TS.Compare(eb.TS); c != 0 {
				return c
			}
			return strings.Compare(ea.ActivityID, eb.ActivityID)
		})
	}
	return groups
}

// planOccurrences plans a batch of events that are all new (deduplicated
// within the batch and absent from the table). before holds the stored state
// of the touched partitions; a partition missing from it is empty.
func planOccurrences(evs []*event.Event, before map[partKey]partState) occPlan {
	return planGroups(evs, groupPartitions(evs), before, true)
}

// planGroups is planOccurrences with the batch already grouped by
// groupPartitions: the part that depends on the stored states, run under
// the writer lock. With rows, every row's occ and rep are set (zero for
// rows of late partitions); a load whose rows were prepared needs only the
// bases.
func planGroups(evs []*event.Event, groups []partGroup, before map[partKey]partState, rows bool) occPlan {
	p := occPlan{bases: make([]int64, len(groups)), after: make(map[partKey]partState, len(groups))}
	if rows {
		p.rows = make([]stageRow, len(evs))
		for i, e := range evs {
			p.rows[i].ev = e
		}
	}
	for gi, g := range groups {
		k, idx := g.key, g.idx
		first, last := evs[idx[0]], evs[idx[len(idx)-1]]
		st, stored := before[k]
		if stored && st.n > 0 && !keyLess(st.lastTS, st.lastID, first.TS, first.ActivityID) {
			p.late = append(p.late, latePart{key: k, lower: first.TS, nBefore: st.n, firstTS: st.firstTS, lastTS: st.lastTS})
			p.bases[gi] = -1
			next := st
			next.n += int64(len(idx))
			if first.TS.Before(next.firstTS) {
				next.firstTS = first.TS
			}
			if keyLess(next.lastTS, next.lastID, last.TS, last.ActivityID) {
				next.lastTS, next.lastID = last.TS, last.ActivityID
			}
			p.after[k] = next
			continue
		}
		var n int64
		firstTS := first.TS
		if stored && st.n > 0 {
			n = st.n
			firstTS = st.firstTS
			p.prevLast = append(p.prevLast, pointUpdate{customer: k.customer, activityID: st.lastID, ts: st.lastTS, rep: first.TS})
		}
		p.bases[gi] = n
		for j, i := range idx {
			if !rows {
				break
			}
			p.rows[i].occ = n + int64(j) + 1
			if j+1 < len(idx) {
				p.rows[i].rep = evs[idx[j+1]].TS
			}
		}
		p.after[k] = partState{n: n + int64(len(idx)), firstTS: firstTS, lastTS: last.TS, lastID: last.ActivityID}
	}
	return p
}

// dedupBatch keeps the first event of each (customer, activity_id). It
// returns the events with times in UTC truncated to microseconds (the
// warehouse's precision), so that Go and DuckDB order rows alike; the
// caller's events are not modified. An event whose times are already so
// (every event decoded from the spool) is returned as a pointer into evs
// rather than copied: copying the batch (176 bytes an event into a new
// slice) was a third of dedupBatch's time in a CPU profile of
// `activitybi-load upload`, when dedupBatch still ran under the writer lock
// (it runs in Prepare now, ahead of the load, when the caller prepares).
func dedupBatch(evs []event.Event) []*event.Event {
	out := make([]*event.Event, 0, len(evs))
	seen := make(map[[2]string]struct{}, len(evs))
	var copies []event.Event // normalized copies, allocated on first need
	for i := range evs {
		e := &evs[i]
		k := [2]string{e.Customer, e.ActivityID}
		if _, dup := seen[k]; dup {
			continue
		}
		seen[k] = struct{}{}
		ts, recv := warehouseTime(e.TS), warehouseTime(e.ReceivedAt)
		if ts != e.TS || recv != e.ReceivedAt {
			if copies == nil {
				copies = make([]event.Event, 0, len(evs)-i)
			}
			copies = append(copies, *e)
			e = &copies[len(copies)-1]
			e.TS, e.ReceivedAt = ts, recv
		}
		out = append(out, e)
	}
	return out
}

// warehouseTime is t as the warehouse stores it: UTC, to the microsecond,
// with no monotonic clock reading. Comparing it with t (==) tells whether t
// is already so.
func warehouseTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }
