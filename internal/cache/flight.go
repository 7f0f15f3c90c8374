package cache

import (
	"context"
	"errors"
)

// flight is one L2 read and load of a key, shared by every Get of the key
// that misses L1 while it runs. Unlike x/sync/singleflight, the load does not
// run on the first caller's context: it keeps running while any caller
// waits, and is cancelled when the last one gives up.
type flight struct {
	seq     uint64     // taken when the flight started; see Cache.seq
	cust    *custState // the customer's state the flight was started against
	done    chan struct{}
	res     flightResult // written before done is closed
	waiters int          // guarded by Cache.flightMu
	cancel  context.CancelFunc
}

type flightResult struct {
	entry Entry
	tier  Tier
	err   error
	stale error // entry is a load's *StaleEntry, for this reason; kept nowhere
}

// do joins the key's flight, or starts one, and waits for it or for ctx.
func (c *Cache) do(ctx context.Context, k l1Key, ks l2Keys, st *custState, load func(context.Context) (Entry, error)) (flightResult, error) {
	c.flightMu.Lock()
	if c.closed {
		c.flightMu.Unlock()
		return flightResult{}, ErrClosed
	}
	f := c.flights[k]
	if f != nil && (f.cust != st || f.seq <= st.invalidated.Load() || f.seq <= c.flushed.Load()) {
		// It started before an invalidation this caller may have seen: its
		// answer is not fresh. Start another; the old one finishes alone.
		f = nil
	}
	if f == nil {
		f = &flight{seq: c.seq.Add(1), cust: st, done: make(chan struct{})}
		var fctx context.Context
		fctx, f.cancel = context.WithCancel(context.WithoutCancel(ctx))
		c.flights[k] = f
		c.wg.Add(1)
		go c.runFlight(fctx, k, ks, f, load)
	}
	f.waiters++
	c.flightMu.Unlock()

	select {
	case <-f.done:
		return f.res, f.res.err
	case <-ctx.Done():
		c.flightMu.Lock()
		f.waiters--
		if f.waiters == 0 {
			if c.flights[k] == f {
				delete(c.flights, k)
			}
			f.cancel()
		}
		c.flightMu.Unlock()
		return flightResult{}, ctx.Err()
	}
}

func (c *Cache) runFlight(ctx context.Context, k l1Key, ks l2Keys, f *flight, load func(context.Context) (Entry, error)) {
	defer c.wg.Done()
	stop := context.AfterFunc(c.closing, f.cancel)
	res, after := c.fill(ctx, k, ks, f, load)
	stop()
	f.cancel()
	c.flightMu.Lock()
	if c.flights[k] == f {
		delete(c.flights, k)
	}
	f.res = res
	c.flightMu.Unlock()
	close(f.done)
	if after != nil {
		after() // the L2 write-back, off the callers' path
	}
}

// fill is the body of a flight: L1 again (another flight may have just
// filled it), L2, then load. It returns the write-back to run after the
// callers have their answer.
func (c *Cache) fill(ctx context.Context, k l1Key, ks l2Keys, f *flight, load func(context.Context) (Entry, error)) (flightResult, func()) {
	if v, ok := c.l1.GetIfPresent(k); ok && c.fresh(v, c.now()) {
		return flightResult{entry: v.entry, tier: TierL1}, nil
	}
	var (
		tag     string
		haveTag bool // tag was read: a write-back may be tagged with it
		l2Err   error
	)
	if c.rdb != nil {
		e, g, hit, err := c.l2Get(ctx, ks)
		if hit {
			c.setL1(k, f.cust, f.seq, e)
			return flightResult{entry: e, tier: TierL2}, nil
		}
		tag, haveTag, l2Err = g, err == nil, err
	}
	e, err := c.callLoad(ctx, load)
	var se *StaleEntry
	if errors.As(err, &se) && se.Err != nil {
		return flightResult{entry: se.Entry, tier: TierLoad, stale: &Error{Load: se.Err, L2: l2Err}}, nil
	}
	if err != nil {
		return flightResult{err: &Error{Load: err, L2: l2Err}}, nil
	}
	c.setL1(k, f.cust, f.seq, e)
	if !haveTag {
		return flightResult{entry: e, tier: TierLoad}, nil
	}
	return flightResult{entry: e, tier: TierLoad}, func() { c.l2Set(ks, tag, e) }
}
