package artifact

import (
	"context"
	"errors"
	"time"
)

// Sweep deletes expired artifacts of every customer, the blob before the
// row, and returns how many it removed. An artifact it cannot remove stays
// (its row still leads to it) and is retried by the next sweep; the error
// says what failed. One Sweep removes at most sweepBatch*maxSweepRounds
// artifacts; the rest wait for the next one.
func (s *Store) Sweep(ctx context.Context) (removed int, err error) {
	now := s.opts.Now().UTC()
	var errs []error
	for round := 0; ; round++ {
		if round == maxSweepRounds {
			s.m.sweepTruncated.Inc()
			s.log.Warn("artifact: sweep stopped at its limit; the rest waits for the next sweep",
				"removed", removed, "limit", s.sweepBatch*maxSweepRounds)
			break
		}
		rows, err := s.opts.Index.ExpiredArtifacts(ctx, now, s.sweepBatch)
		if err != nil {
			errs = append(errs, err)
			break
		}
		n := 0
		for _, row := range rows {
			if err := s.remove(ctx, row); err != nil {
				s.m.sweepErrors.Inc()
				errs = append(errs, err)
				if ctx.Err() != nil {
					break
				}
				continue
			}
			n++
		}
		removed += n
		s.m.swept.Add(float64(n))
		// A short batch was the last; a batch where nothing could be
		// removed would come back unchanged.
		if len(rows) < s.sweepBatch || n == 0 || ctx.Err() != nil {
			break
		}
	}
	if removed > 0 {
		s.log.Info("artifact: swept expired artifacts", "removed", removed)
	}
	return removed, errors.Join(errs...)
}

// Run sweeps at once and then every SweepInterval until ctx ends. A failed
// sweep is logged and retried at the next interval.
func (s *Store) Run(ctx context.Context) error {
	t := time.NewTicker(SweepInterval)
	defer t.Stop()
	for {
		if _, err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("artifact: sweep", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
