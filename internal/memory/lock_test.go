package memory

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/activitybi/activitybi/internal/warehouse"
)

// gatedQuerier holds every query until gate is closed (or the query's
// context ends); entered is closed by the first query.
type gatedQuerier struct {
	Querier
	entered, gate chan struct{}
	once          sync.Once
}

func (g *gatedQuerier) CustomerQuery(ctx context.Context, customer, q string, args []any, maxRows int) (*warehouse.Table, error) {
	g.once.Do(func() { close(g.entered) })
	select {
	case <-g.gate:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return g.Querier.CustomerQuery(ctx, customer, q, args, maxRows)
}

// TestStoreLoadWaitCancelled: a load waiting for another load's build of
// the same customer returns with its context's error when that context
// ends; the build goes on, and the loads still waiting get its answer.
func TestStoreLoadWaitCancelled(t *testing.T) {
	t.Parallel()
	db := smallFixture(t)
	clk := &clock{t: smallNow}
	g := &gatedQuerier{Querier: db, entered: make(chan struct{}), gate: make(chan struct{})}
	b := newStore(t, db, clk, func(o *StoreOptions) {
		o.Builder = newBuilder(t, g, func(o *Options) { o.Now = clk.Now })
	})
	type result struct {
		l   Loaded
		err error
	}
	load := func(ctx context.Context) <-chan result {
		ch := make(chan result, 1)
		go func() {
			l, err := b.s.Load(ctx, "alice", "")
			ch <- result{l, err}
		}()
		return ch
	}
	first := load(context.Background())
	<-g.entered // the first load holds alice's build lock, building
	const deadline = 100 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	second := load(ctx)
	third := load(context.Background())
	select {
	case r := <-second:
		if !errors.Is(r.err, context.DeadlineExceeded) {
			t.Fatalf("second load: %v, want the deadline's error", r.err)
		}
		t.Logf("second load returned %v after its start (deadline %v)", time.Since(start), deadline)
	case <-time.After(10 * time.Second):
		t.Error("second load did not return when its deadline passed: it waits for the first")
	}
	select {
	case r := <-first:
		t.Fatalf("the first load ended before its build could: %v", r.err)
	default:
	}
	close(g.gate)
	for name, ch := range map[string]<-chan result{"first": first, "third": third} {
		r := <-ch
		if r.err != nil || len(r.l.JSON) == 0 {
			t.Fatalf("%s load: %v", name, r.err)
		}
	}
	b.s.Wait()
	b.s.locks.mu.Lock()
	left := len(b.s.locks.m)
	b.s.locks.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d build locks left after every load returned", left)
	}
}
