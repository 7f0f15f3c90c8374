package query

import (
	"math"
	"time"
)

// Progress of a running ticket, estimated from how long earlier runs of the
// same question took (see the package doc, "Progress"): DuckDB computes
// query progress only for connections with enable_progress_bar, which the
// warehouse's locked configuration refuses, so the engine cannot ask it.
const (
	// progressStep is how often Wait re-estimates a running ticket's
	// progress for a caller that asked for progress.
	progressStep = 500 * time.Millisecond
	// maxEstimates bounds each table of earlier run times (by question
	// and by template, per customer); a full table starts over.
	maxEstimates = 10000
	// estimateWeight is the weight of the newest run in the running
	// average of a question's run time.
	estimateWeight = 0.5
	// progressLinear is the share of the bar the expected time fills;
	// past it, the estimate creeps toward progressCeiling and never
	// reaches it (an estimate never says done).
	progressLinear  = 0.9
	progressCeiling = 0.99
)

// estimates remembers how long a customer's questions ran. mu held.
type estimates struct {
	byHash map[hashKey]time.Duration // customer + query hash
	byName map[hashKey]time.Duration // customer + template name ("dataset")
}

func (s *estimates) observe(customer, hash, name string, d time.Duration) {
	if s.byHash == nil || len(s.byHash) >= maxEstimates {
		s.byHash = make(map[hashKey]time.Duration)
	}
	if s.byName == nil || len(s.byName) >= maxEstimates {
		s.byName = make(map[hashKey]time.Duration)
	}
	avg := func(m map[hashKey]time.Duration, k hashKey) {
		if old, ok := m[k]; ok {
			m[k] = time.Duration(estimateWeight*float64(d) + (1-estimateWeight)*float64(old))
		} else {
			m[k] = d
		}
	}
	avg(s.byHash, hashKey{customer, hash})
	avg(s.byName, hashKey{customer, name})
}

// expected is how long the question should run, or 0 when nothing like it
// ran before.
func (s *estimates) expected(customer, hash, name string) time.Duration {
	if d, ok := s.byHash[hashKey{customer, hash}]; ok {
		return d
	}
	return s.byName[hashKey{customer, name}]
}

// estimateProgress maps elapsed run time against the expected time to a
// fraction in [0, progressCeiling).
func estimateProgress(elapsed, expected time.Duration) float64 {
	if expected <= 0 || elapsed < 0 {
		return 0
	}
	f := float64(elapsed) / float64(expected)
	if f <= 1 {
		return progressLinear * f
	}
	return progressLinear + (progressCeiling-progressLinear)*(1-math.Exp(-(f-1)))
}

// view is the ticket as callers see it: a running ticket with an expected
// time gets its estimated progress. mu held.
func (e *Engine) view(t *ticket) *Ticket {
	s := t.snapshot()
	if s.State == StateRunning && t.expected > 0 && !t.cancelled {
		s.Progress = math.Round(estimateProgress(e.opts.Now().Sub(s.StartedAt), t.expected)*1000) / 1000
		s.ProgressEstimated = true
	}
	return s
}
