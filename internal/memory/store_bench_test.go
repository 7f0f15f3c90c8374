package memory

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/activitybi/activitybi/internal/memory/memorytest"
	"github.com/activitybi/activitybi/internal/warehouse/duckdb"
)

// BenchmarkStore is the core's loader on a fleet of 100 customers with
// 10,000 events and 100 insights each (1M events, bench/memory.md's
// warehouse): a load answered by the customer's context_cache row, a load
// that builds (no row), one customer's refresh (build and row write), and a
// refresh round over all 100 (every one rebuilt; then every one skipped),
// with p50/p95/p99 per operation. Writing the fleet takes ~10-30 s.
//
//	go test -run '^$' -bench Store -benchtime 200x ./internal/memory/
func BenchmarkStore(b *testing.B) {
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "fleet.duckdb")
	now := time.Now().UTC().Truncate(time.Second)
	if err := memorytest.WriteFleet(ctx, path, memorytest.FleetOptions{Now: now}); err != nil {
		b.Fatal(err)
	}
	db, err := duckdb.Open(ctx, duckdb.Options{Path: path})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	newStoreB := func(b *testing.B, mod func(*StoreOptions)) *Store {
		bld, err := NewBuilder(Options{Warehouse: db})
		if err != nil {
			b.Fatal(err)
		}
		o := StoreOptions{Builder: bld, Warehouse: db}
		if mod != nil {
			mod(&o)
		}
		s, err := NewStore(o)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(s.Wait)
		return s
	}
	customer := func(i int) string { return fmt.Sprintf("customer-%03d", i%100) }
	timed := func(b *testing.B, op func(i int) error) {
		lat := make([]time.Duration, 0, b.N)
		cpu0 := processCPU()
		i := 0
		for b.Loop() {
			start := time.Now()
			if err := op(i); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
			i++
		}
		b.StopTimer()
		if n := len(lat); n > 0 {
			b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/1000/float64(n), "cpu-ms/op")
		}
		reportPercentiles(b, lat)
	}

	b.Run("load/row", func(b *testing.B) {
		s := newStoreB(b, nil)
		if _, err := s.Warm(ctx); err != nil { // every row written by this store
			b.Fatal(err)
		}
		b.ResetTimer()
		timed(b, func(i int) error {
			l, err := s.Load(ctx, customer(i), "")
			if err == nil && !l.FromRow {
				err = fmt.Errorf("%s: not from the row", customer(i))
			}
			return err
		})
	})
	b.Run("load/build", func(b *testing.B) {
		s := newStoreB(b, func(o *StoreOptions) { o.NoRows = true })
		timed(b, func(i int) error { _, err := s.Load(ctx, customer(i), ""); s.Wait(); return err })
	})
	b.Run("refresh/customer", func(b *testing.B) {
		s := newStoreB(b, nil)
		timed(b, func(i int) error {
			if res := s.refreshNamed(ctx, customer(i)); res == ResultFailed {
				return fmt.Errorf("refresh of %s failed", customer(i))
			}
			return nil
		})
	})
	b.Run("refresh/round-all-rebuilt", func(b *testing.B) {
		s := newStoreB(b, func(o *StoreOptions) { o.ActiveFor = 8 * 24 * time.Hour })
		timed(b, func(int) error {
			s.mu.Lock()
			clear(s.state) // nothing known: every customer is rebuilt
			s.mu.Unlock()
			st, err := s.Refresh(ctx)
			if err == nil && st.Changed+st.Unchanged != 100 {
				err = fmt.Errorf("round %+v", st)
			}
			return err
		})
	})
	b.Run("refresh/round-all-skipped", func(b *testing.B) {
		s := newStoreB(b, func(o *StoreOptions) { o.ActiveFor = 8 * 24 * time.Hour })
		if _, err := s.Refresh(ctx); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		timed(b, func(int) error {
			st, err := s.Refresh(ctx)
			if err == nil && st.Skipped != 100 {
				err = fmt.Errorf("round %+v", st)
			}
			return err
		})
	})
}
