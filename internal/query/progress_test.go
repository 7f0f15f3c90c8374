package query

import (
	"context"
	"sync"
	"testing"
	"time"
)

func TestEstimateProgress(t *testing.T) {
	t.Parallel()
	exp := 10 * time.Second
	for _, c := range []struct {
		elapsed, expected time.Duration
		lo, hi            float64
	}{
		{0, exp, 0, 0},
		{5 * time.Second, exp, 0.45, 0.45},
		{exp, exp, 0.9, 0.9},
		{20 * time.Second, exp, 0.95, 0.96},
		{10 * exp, exp, 0.98, progressCeiling},
		{time.Second, 0, 0, 0}, // nothing known
		{-time.Second, exp, 0, 0},
	} {
		got := estimateProgress(c.elapsed, c.expected)
		if got < c.lo-1e-9 || got > c.hi+1e-9 || got >= progressCeiling {
			t.Errorf("estimateProgress(%s, %s) = %v, want in [%v, %v]", c.elapsed, c.expected, got, c.lo, c.hi)
		}
	}
}

// TestEstimatedProgress: a running ticket whose template ran before for the
// customer reports progress from the earlier run's time; one that never
// ran reports -1; Wait re-reports it every progressStep.
func TestEstimatedProgress(t *testing.T) {
	t.Parallel()
	db := openWarehouse(t)
	clk := &clock{t: t0}
	e, _ := newEngine(t, db, Options{Workers: 2, Now: clk.Now})
	e.mu.Lock()
	e.est.observe("alice", "q_another_question", "slow", 10*time.Second)
	e.mu.Unlock()
	run(t, e)
	ctx := context.Background()
	tk := submit(t, e, "alice", "slow", "")
	unknown := submit(t, e, "bob", "slow", "")
	defer e.Cancel(ctx, "alice", tk.ID)
	defer e.Cancel(ctx, "bob", unknown.ID)
	waitState(t, e, "alice", tk.ID, StateRunning)
	waitState(t, e, "bob", unknown.ID, StateRunning)

	for _, step := range []struct {
		advance time.Duration
		want    float64
	}{{0, 0}, {5 * time.Second, 0.45}, {5 * time.Second, 0.9}} {
		clk.Add(step.advance)
		s, err := e.Status(ctx, "alice", tk.ID)
		if err != nil || !s.ProgressEstimated || s.Progress != step.want {
			t.Fatalf("after %s more: progress %v (estimated %v), want %v; %v", step.advance, s.Progress, s.ProgressEstimated, step.want, err)
		}
	}
	if s, _ := e.Status(ctx, "bob", unknown.ID); s.Progress != -1 || s.ProgressEstimated {
		t.Errorf("bob's first run of the template: progress %v, estimated %v", s.Progress, s.ProgressEstimated)
	}

	var mu sync.Mutex
	var reports []float64
	if _, err := e.Wait(ctx, "alice", tk.ID, 3*progressStep-progressStep/2, func(s *Ticket) {
		mu.Lock()
		reports = append(reports, s.Progress)
		mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reports) < 2 || reports[0] != 0.9 {
		t.Errorf("Wait reported %v; want the estimate at its start and again at each step", reports)
	}
}

// TestEstimatesFromRuns: a succeeded run's time is remembered for its
// question and template, and a restart remembers stored runs.
func TestEstimatesFromRuns(t *testing.T) {
	t.Parallel()
	db := openWarehouse(t)
	e, _ := newEngine(t, db, Options{Store: db})
	stop := run(t, e)
	tk := waitFinal(t, e, "alice", submit(t, e, "alice", "by_activity", "").ID)
	e.mu.Lock()
	byHash, byName := e.est.expected("alice", tk.QueryHash, "x"), e.est.expected("alice", "q_x", "by_activity")
	bob := e.est.expected("bob", tk.QueryHash, "by_activity")
	e.mu.Unlock()
	if byHash <= 0 || byName != byHash || bob != 0 {
		t.Fatalf("expected times: by hash %s, by name %s, bob %s", byHash, byName, bob)
	}
	stop()
	again, _ := newEngine(t, db, Options{Store: db})
	again.mu.Lock()
	got := again.est.expected("alice", tk.QueryHash, "by_activity")
	again.mu.Unlock()
	// The warehouse keeps microseconds.
	if want := tk.FinishedAt.Sub(tk.StartedAt); (got - want).Abs() > 2*time.Microsecond {
		t.Errorf("after a restart: %s, want the stored run's %s", got, want)
	}
}
