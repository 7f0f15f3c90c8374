package memory

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/activitybi/activitybi/internal/warehouse"
)

// Kinds of rebuild, the kind label of the refresh metrics.
const (
	// KindWarm: on start, every customer active within WarmFor.
	KindWarm = "warm"
	// KindRefresh: every RefreshEvery, every customer active within
	// ActiveFor.
	KindRefresh = "refresh"
	// KindInvalidated: soon after Invalidate, that customer.
	KindInvalidated = "invalidated"
)

// Results of one customer's refresh, the result label of
// activitybi_memory_refreshed_total.
const (
	ResultChanged   = "changed"   // rebuilt; the content (and version) changed
	ResultUnchanged = "unchanged" // rebuilt; the same content, version kept
	ResultSkipped   = "skipped"   // not rebuilt: nothing arrived since the last build
	ResultFailed    = "failed"    // the build or the activity read failed
)

// RoundStats says what one round did.
type RoundStats struct {
	Kind      string
	Customers int // customers the round looked at
	// Limited is set when more customers were active than the round's
	// limit; the least recently active were left out, LeftOut of them (at
	// least: see countBeyond).
	Limited                             bool
	LeftOut                             int
	Changed, Unchanged, Skipped, Failed int
	Duration                            time.Duration
}

// Run builds the customers active within WarmFor (warm-up), then every
// RefreshEvery rebuilds those active within ActiveFor, and rebuilds an
// invalidated customer soon after Invalidate. It returns when ctx ends,
// after the rebuilds and row writes under way.
func (s *Store) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.runSoon(ctx)
	}()
	if _, err := s.Warm(ctx); err != nil && ctx.Err() == nil {
		s.log.Warn("memory: warm-up failed; contexts are built on first use", "err", err)
	}
	t := time.NewTicker(s.o.RefreshEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			s.Wait()
			return nil
		case <-t.C:
			if _, err := s.Refresh(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("memory: refresh round failed", "err", err)
			}
		}
	}
}

// runSoon rebuilds invalidated customers one at a time.
func (s *Store) runSoon(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case c := <-s.soon:
			s.dequeued(c) // before the rebuild reads anything
			start := time.Now()
			res := s.refreshNamed(ctx, c)
			s.m.refreshed.WithLabelValues(KindInvalidated, res).Inc()
			s.m.refreshDur.WithLabelValues(KindInvalidated).Observe(time.Since(start).Seconds())
		}
	}
}

// refreshNamed rebuilds one customer whatever its activity says.
func (s *Store) refreshNamed(ctx context.Context, customer string) string {
	actx, cancel := context.WithTimeout(ctx, activityTimeout)
	// A since in the future: only the customer named.
	acts, err := s.wh.CustomerActivity(actx, s.o.Now().Add(24*time.Hour), []string{customer}, 1)
	cancel()
	var act warehouse.CustomerActivity
	if err == nil && len(acts) == 1 {
		act = acts[0]
	}
	act.Customer = customer
	res, _ := s.refreshOne(ctx, act, true)
	return res
}

// Warm builds every customer with an event or insight within WarmFor (at
// most MaxWarmCustomers, most recent first) and then calls OnWarm for it.
func (s *Store) Warm(ctx context.Context) (RoundStats, error) {
	return s.round(ctx, KindWarm, s.o.WarmFor, s.o.MaxWarmCustomers, nil)
}

// Refresh runs one refresh round: every customer with an event, insight or
// get_context within ActiveFor (at most MaxRefreshCustomers) is rebuilt,
// unless nothing arrived for it since its last build and that build is
// younger than RebuildAfter. A changed context is reported to OnChange.
func (s *Store) Refresh(ctx context.Context) (RoundStats, error) {
	cutoff := s.o.Now().Add(-s.o.ActiveFor)
	// Every one (at most maxTracked): the round's limit applies to all the
	// active customers together, most recently active first, and counts
	// the ones left out. Cutting this list here would drop customers
	// active by get_context alone unseen.
	s.mu.Lock()
	var also []string
	for c, t := range s.touched {
		if t.After(cutoff) {
			also = append(also, c)
		}
	}
	s.mu.Unlock()
	return s.round(ctx, KindRefresh, s.o.ActiveFor, s.o.MaxRefreshCustomers, also)
}

func (s *Store) round(ctx context.Context, kind string, within time.Duration, limit int, also []string) (RoundStats, error) {
	start := time.Now()
	st := RoundStats{Kind: kind}
	actx, cancel := context.WithTimeout(ctx, activityTimeout)
	// Past the limit, up to countBeyond more are read only to be counted.
	fetch := limit + s.countBeyond + 1
	acts, err := s.wh.CustomerActivity(actx, s.o.Now().Add(-within), also, fetch)
	cancel()
	if err != nil {
		s.m.roundErrors.WithLabelValues(kind).Inc()
		return st, err
	}
	if len(acts) > limit {
		st.Limited, st.LeftOut = true, len(acts)-limit
		acts = slices.Clone(acts[:limit]) // not keeping the rest's memory
		s.m.roundLimited.WithLabelValues(kind).Inc()
		s.m.roundLeftOut.WithLabelValues(kind).Add(float64(st.LeftOut))
		s.log.Warn("memory: more active customers than a round takes; the least recently active wait for their next load",
			"kind", kind, "limit", limit, "left_out", st.LeftOut, "left_out_is_lower_bound", len(acts)+st.LeftOut == fetch)
	}
	st.Customers = len(acts)
	if kind == KindRefresh {
		s.m.active.Set(float64(len(acts)))
	}
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		work = make(chan warehouse.CustomerActivity)
	)
	for range min(s.o.Concurrency, max(len(acts), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for a := range work {
				t := time.Now()
				res, built := s.refreshOne(ctx, a, false)
				if built {
					s.m.refreshDur.WithLabelValues(kind).Observe(time.Since(t).Seconds())
				}
				s.m.refreshed.WithLabelValues(kind, res).Inc()
				if kind == KindWarm && res != ResultFailed && s.o.OnWarm != nil {
					s.o.OnWarm(ctx, a.Customer)
				}
				mu.Lock()
				switch res {
				case ResultChanged:
					st.Changed++
				case ResultUnchanged:
					st.Unchanged++
				case ResultSkipped:
					st.Skipped++
				default:
					st.Failed++
				}
				mu.Unlock()
			}
		}()
	}
	for _, a := range acts {
		select {
		case work <- a:
			continue
		case <-ctx.Done():
		}
		break
	}
	close(work)
	wg.Wait()
	st.Duration = time.Since(start)
	s.m.roundDur.WithLabelValues(kind).Observe(st.Duration.Seconds())
	s.log.Debug("memory: round done", "kind", kind, "customers", st.Customers, "changed", st.Changed,
		"unchanged", st.Unchanged, "skipped", st.Skipped, "failed", st.Failed, "duration", st.Duration)
	if ctx.Err() != nil {
		return st, ctx.Err()
	}
	if st.Failed > 0 {
		return st, errors.New("memory: some contexts could not be rebuilt (see activitybi_memory_refreshed_total{result=\"failed\"})")
	}
	return st, nil
}

// refreshOne rebuilds a customer's context (scope "") unless force is
// false, nothing arrived since its last build (act equals the watermark of
// that build) and that build is younger than RebuildAfter and was not
// invalidated. It reports the result and whether it built, and tells
// OnChange, after letting go of the customer, when the version moved.
func (s *Store) refreshOne(ctx context.Context, act warehouse.CustomerActivity, force bool) (string, bool) {
	res, built := s.rebuild(ctx, act, force)
	if res == ResultChanged && s.o.OnChange != nil {
		s.o.OnChange(act.Customer)
	}
	return res, built
}

func (s *Store) rebuild(ctx context.Context, act warehouse.CustomerActivity, force bool) (string, bool) {
	customer := act.Customer
	unlock, _, err := s.locks.lock(ctx, customer)
	if err != nil {
		return ResultFailed, false // the round is ending
	}
	defer unlock()
	if !force {
		s.mu.Lock()
		st := s.state[customer]
		d, dirty := s.dirty[customer]
		s.mu.Unlock()
		if st != nil && st.watermark == act && s.o.Now().Sub(st.builtAt) < s.o.RebuildAfter &&
			(!dirty || st.builtAt.After(d)) {
			return ResultSkipped, false
		}
	}
	c, err := s.o.Builder.Build(ctx, customer, "")
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("memory: rebuilding a context failed", "err", err)
		}
		return ResultFailed, true
	}
	_, changed, err := s.commit(ctx, customer, c, true)
	if err != nil {
		s.log.Warn("memory: rebuilding a context failed", "err", err)
		return ResultFailed, true
	}
	s.mu.Lock()
	if st := s.state[customer]; st != nil {
		st.watermark = act
	}
	s.mu.Unlock()
	if !changed {
		return ResultUnchanged, true
	}
	return ResultChanged, true
}
