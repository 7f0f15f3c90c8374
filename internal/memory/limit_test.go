package memory

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// syncBuffer is a bytes.Buffer for a logger written from several
// goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRoundLeftOut: a round takes at most its limit of customers; the ones
// it leaves out are counted (activitybi_memory_round_customers_left_out_total)
// and logged once per round, whether they are active by their events or
// only by a get_context (Touch).
func TestRoundLeftOut(t *testing.T) {
	t.Parallel()
	db := openWarehouse(t)
	clk := &clock{t: smallNow}
	// Five customers with a recent event; five whose events are older than
	// ActiveFor (48 h) and who are active by a get_context only.
	for i := range 5 {
		addEvent(t, db, fmt.Sprintf("recent-%d", i), fmt.Sprintf("r%d", i), smallNow.Add(-time.Duration(i+1)*time.Hour))
		addEvent(t, db, fmt.Sprintf("touched-%d", i), fmt.Sprintf("t%d", i), smallNow.Add(-10*24*time.Hour))
	}
	ctx := context.Background()
	leftOut := func(b *storeBundle, kind string) float64 {
		return testutil.ToFloat64(b.s.m.roundLeftOut.WithLabelValues(kind))
	}
	warnings := func(log *syncBuffer) []string {
		var out []string
		for _, l := range strings.Split(log.String(), "\n") {
			if strings.Contains(l, "level=WARN") && strings.Contains(l, "more active customers") {
				out = append(out, l)
			}
		}
		return out
	}

	t.Run("by events", func(t *testing.T) {
		var log syncBuffer
		b := newStore(t, db, clk, func(o *StoreOptions) {
			o.MaxRefreshCustomers, o.MaxWarmCustomers = 2, 3
			o.Logger = slog.New(slog.NewTextHandler(&log, nil))
		})
		st, err := b.s.Refresh(ctx)
		if err != nil || st.Customers != 2 || !st.Limited || st.LeftOut != 3 {
			t.Fatalf("refresh: %+v %v", st, err)
		}
		if got := leftOut(b, KindRefresh); got != 3 {
			t.Fatalf("left out (refresh) = %v, want 3", got)
		}
		// Warm-up: WarmFor (7 days) holds the five recent ones.
		st, err = b.s.Warm(ctx)
		if err != nil || st.Customers != 3 || st.LeftOut != 2 || leftOut(b, KindWarm) != 2 {
			t.Fatalf("warm: %+v %v, counted %v", st, err, leftOut(b, KindWarm))
		}
		w := warnings(&log)
		if len(w) != 2 || !strings.Contains(w[0], "left_out=3") || !strings.Contains(w[1], "left_out=2") ||
			!strings.Contains(w[0], "left_out_is_lower_bound=false") {
			t.Fatalf("want one warning per round, with how many were left out: %q", w)
		}
	})

	t.Run("by get_context", func(t *testing.T) {
		var log syncBuffer
		b := newStore(t, db, clk, func(o *StoreOptions) {
			// No event is this recent: only get_context makes a customer
			// active.
			o.ActiveFor = 30 * time.Minute
			o.MaxRefreshCustomers = 3
			o.Logger = slog.New(slog.NewTextHandler(&log, nil))
		})
		for i := range 5 {
			b.s.Touch(fmt.Sprintf("touched-%d", i))
		}
		st, err := b.s.Refresh(ctx)
		if err != nil || st.Customers != 3 || !st.Limited || st.LeftOut != 2 || leftOut(b, KindRefresh) != 2 {
			t.Fatalf("refresh: %+v %v, counted %v", st, err, leftOut(b, KindRefresh))
		}
		if w := warnings(&log); len(w) != 1 || !strings.Contains(w[0], "left_out=2") {
			t.Fatalf("warnings %q", w)
		}
	})

	t.Run("lower bound", func(t *testing.T) {
		var log syncBuffer
		b := newStore(t, db, clk, func(o *StoreOptions) {
			o.MaxRefreshCustomers = 1
			o.Logger = slog.New(slog.NewTextHandler(&log, nil))
		})
		b.s.countBeyond = 2 // read at most 1+2+1 customers
		st, err := b.s.Refresh(ctx)
		if err != nil || st.Customers != 1 || st.LeftOut != 3 || leftOut(b, KindRefresh) != 3 {
			t.Fatalf("refresh: %+v %v, counted %v", st, err, leftOut(b, KindRefresh))
		}
		if w := warnings(&log); len(w) != 1 || !strings.Contains(w[0], "left_out=3") || !strings.Contains(w[0], "left_out_is_lower_bound=true") {
			t.Fatalf("warnings %q", w)
		}
	})
}
