package query

import (
	"slices"
	"time"
)

// Budget limits what one customer may ask of the engine. Zero fields take
// their defaults.
type Budget struct {
	// PerMinute is how many queries a customer may submit in any rolling
	// minute. Default DefaultPerMinute.
	PerMinute int
	// Concurrent is how many of a customer's tickets may be unfinished
	// (queued or running) at once. Default DefaultConcurrent.
	Concurrent int
	// EngineSecondsPerDay is how much engine time (every run of every
	// ticket, sampling included) a customer's finished tickets may have
	// used in one UTC day before submissions are refused until midnight
	// UTC. A running ticket can overshoot it by at most its timeout.
	// Default DefaultEngineSecondsPerDay.
	EngineSecondsPerDay int
}

// Budget defaults: generous for one person asking questions in a
// conversation, tight enough that a runaway loop is stopped within a
// minute and cannot hold the warehouse for more than half an hour a day.
const (
	DefaultPerMinute           = 30
	DefaultConcurrent          = 10
	DefaultEngineSecondsPerDay = 1800
)

// custState is one customer's budget use and queue. Guarded by Engine.mu.
type custState struct {
	name string
	// recent are the times of accepted submissions in the last minute,
	// oldest first.
	recent     []time.Time
	unfinished int // queued or running tickets
	day        time.Time
	engine     time.Duration // engine time of tickets finished on day
	queue      []*ticket     // queued tickets, FIFO
	inRing     bool          // in fairQueue.ring
}

// check returns the budget that refuses another submission at now, or nil.
func (c *custState) check(b Budget, now time.Time) *BudgetError {
	cut := now.Add(-time.Minute)
	i := 0
	for i < len(c.recent) && !c.recent[i].After(cut) {
		i++
	}
	c.recent = slices.Delete(c.recent, 0, i)
	if len(c.recent) >= b.PerMinute {
		return &BudgetError{Budget: BudgetPerMinute, Limit: float64(b.PerMinute), Used: float64(len(c.recent)),
			RetryAfter: c.recent[0].Add(time.Minute).Sub(now)}
	}
	if c.unfinished >= b.Concurrent {
		return &BudgetError{Budget: BudgetConcurrent, Limit: float64(b.Concurrent), Used: float64(c.unfinished),
			RetryAfter: time.Second}
	}
	return c.checkEngine(b, now)
}

// checkEngine is check's engine-time part: today's engine time against
// b.EngineSecondsPerDay.
func (c *custState) checkEngine(b Budget, now time.Time) *BudgetError {
	c.rollDay(now)
	if c.engine >= time.Duration(b.EngineSecondsPerDay)*time.Second {
		return &BudgetError{Budget: BudgetEngineSeconds, Limit: float64(b.EngineSecondsPerDay),
			Used: c.engine.Seconds(), RetryAfter: c.day.Add(24 * time.Hour).Sub(now)}
	}
	return nil
}

// rollDay starts a new day's engine time when now is past c.day.
func (c *custState) rollDay(now time.Time) {
	d := utcDay(now)
	if !d.Equal(c.day) {
		c.day, c.engine = d, 0
	}
}

// addEngine counts engine time of a ticket that finished at now.
func (c *custState) addEngine(now time.Time, d time.Duration) {
	c.rollDay(now)
	c.engine += d
}

func utcDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// fairQueue serves customers round-robin, each customer's tickets in the
// order they came: a customer with 40 queued tickets delays another's
// first ticket by at most one ticket per worker. Guarded by Engine.mu.
type fairQueue struct {
	ring []*custState // customers with queued tickets
	next int          // index in ring of the customer served next
	n    int          // queued tickets in all
}

func (q *fairQueue) push(c *custState, t *ticket) {
	c.queue = append(c.queue, t)
	if !c.inRing {
		c.inRing = true
		q.ring = append(q.ring, c)
	}
	q.n++
}

// pop takes the next customer's oldest ticket, or nil.
func (q *fairQueue) pop() *ticket {
	if len(q.ring) == 0 {
		return nil
	}
	if q.next >= len(q.ring) {
		q.next = 0
	}
	c := q.ring[q.next]
	t := c.queue[0]
	c.queue[0] = nil
	c.queue = c.queue[1:]
	q.n--
	if len(c.queue) == 0 {
		q.dropAt(q.next) // next now names the customer after c
	} else {
		q.next++
	}
	return t
}

// remove takes t out of c's queue (a queued ticket being cancelled).
func (q *fairQueue) remove(c *custState, t *ticket) bool {
	i := slices.Index(c.queue, t)
	if i < 0 {
		return false
	}
	c.queue = slices.Delete(c.queue, i, i+1)
	q.n--
	if len(c.queue) == 0 {
		q.dropAt(slices.Index(q.ring, c))
	}
	return true
}

// dropAt removes the customer at ring index k, keeping next on the same
// customer it named (or the one after a removed next).
func (q *fairQueue) dropAt(k int) {
	q.ring[k].inRing = false
	q.ring = slices.Delete(q.ring, k, k+1)
	if k < q.next {
		q.next--
	}
}

// queuedAhead is how many of c's tickets wait before t.
func queuedAhead(c *custState, t *ticket) int {
	return max(0, slices.Index(c.queue, t))
}
