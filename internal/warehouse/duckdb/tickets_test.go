package duckdb

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/activitybi/activitybi/internal/warehouse"
)

// TestTickets stores tickets of two customers, replaces one, and reads them
// back: every column round-trips, expired finished tickets are left out of
// LoadTickets but a crashed run's queued ones are not, hashes are known only
// to their own customer, and DeleteTickets drops by age.
func TestTickets(t *testing.T) {
	t.Parallel()
	db := setup(t)
	ctx := context.Background()
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	full := warehouse.TicketRow{
		TicketID: "qt_A", CustomerID: "alice", QueryHash: "q_aaa", Template: "tool_latency",
		Request: []byte(`{"template":"tool_latency","params":{"days":7}}`), State: "succeeded",
		Progress: 1, Stage: "finished", Principal: "token:t1",
		CreatedAt: now.Add(-time.Minute), StartedAt: now.Add(-59 * time.Second), FinishedAt: now.Add(-58 * time.Second),
		ExpiresAt: now.Add(24 * time.Hour), Rows: 12, Bytes: 3456, Sampled: true, SampleRate: 0.125,
		Truncated: true, ResultPath: "/data/results/qt_A.ndjson", Insights: []string{"atom1", "atom2"},
	}
	queued := warehouse.TicketRow{TicketID: "qt_B", CustomerID: "alice", QueryHash: "q_bbb", Template: "dataset",
		State: "queued", Progress: 0, CreatedAt: now.Add(-2 * time.Hour), ExpiresAt: now.Add(-time.Hour), Principal: "stdio"}
	expired := warehouse.TicketRow{TicketID: "qt_C", CustomerID: "bob", QueryHash: "q_ccc", State: "failed",
		Error: "timed out", CreatedAt: now.Add(-48 * time.Hour), FinishedAt: now.Add(-47 * time.Hour), ExpiresAt: now.Add(-23 * time.Hour)}
	if err := db.SaveTickets(ctx, []warehouse.TicketRow{full, queued, expired}); err != nil {
		t.Fatal(err)
	}
	// A replace changes the row in place.
	queued.Stage = "waiting"
	if err := db.SaveTickets(ctx, []warehouse.TicketRow{queued}); err != nil {
		t.Fatal(err)
	}
	got, err := db.LoadTickets(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	want := []warehouse.TicketRow{queued, full} // by created_at
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("LoadTickets:\n got %+v\nwant %+v", got, want)
	}

	for _, c := range []struct {
		customer, hash string
		want           bool
	}{{"alice", "q_aaa", true}, {"alice", "q_ccc", false}, {"bob", "q_ccc", true}, {"bob", "q_aaa", false}, {"carol", "q_aaa", false}} {
		known, err := db.TicketHashKnown(ctx, c.customer, c.hash)
		if err != nil || known != c.want {
			t.Errorf("TicketHashKnown(%s, %s) = %v, %v; want %v", c.customer, c.hash, known, err, c.want)
		}
	}

	n, err := db.DeleteTickets(ctx, now.Add(-24*time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("DeleteTickets = %d, %v; want 1", n, err)
	}
	if known, _ := db.TicketHashKnown(ctx, "bob", "q_ccc"); known {
		t.Error("deleted ticket's hash still known")
	}
}

func TestSaveTicketsRefusesBadBatches(t *testing.T) {
	t.Parallel()
	db := setup(t)
	ctx := context.Background()
	at := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	row := warehouse.TicketRow{TicketID: "qt_X", CustomerID: "alice", QueryHash: "q", State: "queued", CreatedAt: at}
	for name, rows := range map[string][]warehouse.TicketRow{
		"twice":      {row, row},
		"no id":      {{CustomerID: "a", CreatedAt: at}},
		"no created": {{TicketID: "x", CustomerID: "a"}},
		"bad json":   {{TicketID: "x", CustomerID: "a", CreatedAt: at, Request: []byte("{")}},
	} {
		if err := db.SaveTickets(ctx, rows); err == nil {
			t.Errorf("%s: saved", name)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.SaveTickets(ctx, []warehouse.TicketRow{row}); !errors.Is(err, warehouse.ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
}

// BenchmarkSaveTickets is the cost of one write-behind batch of the query
// engine: new tickets (insert) and changed ones (update), by batch size.
// cpu-ms/op is the process's CPU time per batch (other processes do not
// inflate it); the wall time includes the WAL fsync.
func BenchmarkSaveTickets(b *testing.B) {
	ctx := context.Background()
	db, err := Open(ctx, Options{Path: filepath.Join(b.TempDir(), "w.duckdb")})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	at := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	row := func(id string) warehouse.TicketRow {
		return warehouse.TicketRow{TicketID: id, CustomerID: "alice", QueryHash: "q_x", Template: "tool_latency",
			Request: []byte(`{"template":"tool_latency"}`), State: "succeeded", Progress: 1, CreatedAt: at,
			StartedAt: at, FinishedAt: at, ExpiresAt: at.Add(time.Hour), Rows: 10, Bytes: 100, Principal: "stdio"}
	}
	seq := 0
	for _, n := range []int{1, 50} {
		for _, update := range []bool{false, true} {
			b.Run(fmt.Sprintf("rows=%d/update=%v", n, update), func(b *testing.B) {
				fixed := make([]warehouse.TicketRow, n)
				for i := range fixed {
					fixed[i] = row(fmt.Sprintf("fixed-%d-%d", n, i))
				}
				if err := db.SaveTickets(ctx, fixed); err != nil {
					b.Fatal(err)
				}
				cpu0 := ticketsCPU()
				for b.Loop() {
					rows := fixed
					if !update {
						rows = make([]warehouse.TicketRow, n)
						for i := range rows {
							seq++
							rows[i] = row(fmt.Sprintf("new-%d", seq))
						}
					}
					if err := db.SaveTickets(ctx, rows); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64((ticketsCPU()-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
			})
		}
	}
}
