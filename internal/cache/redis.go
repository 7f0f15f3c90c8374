package cache

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Why L2 was not asked.
var (
	errL2Resting = errors.New("redis failed moments ago; not asked again yet")
	errL2Pending = errors.New("an invalidation of this customer has not reached redis yet")
	errL2Epoch   = errors.New("redis has not taken this process's new epoch yet")
)

// l2Skip says why L2 must not be used for the customer now, or nil.
func (c *Cache) l2Skip(h custHash) error {
	if c.opts.NewEpoch && !c.epochDone.Load() {
		return errL2Epoch
	}
	if time.Now().UnixNano() < c.l2DownUntil.Load() {
		return errL2Resting
	}
	if c.pendingHas(h) {
		return errL2Pending
	}
	return nil
}

// l2Get reads the namespace's epoch, the customer's generation and the
// pair's value in one round trip. hit is set when the value is the pair's
// and was written under the current epoch and generation; tag (both of
// them, when err is nil) is returned to tag a write-back.
//
// When the epoch or the generation is missing (never made, expired, or
// evicted by a maxmemory allkeys-* policy) a second round trip makes a new
// random one (see l2NewTag): a value tagged before can never match it, so
// losing the key costs misses, never the revival of a value an
// invalidation had killed (a counter restarting, or "" standing for
// "none", would match those values again).
func (c *Cache) l2Get(ctx context.Context, ks l2Keys) (e Entry, tag string, hit bool, err error) {
	if err := c.l2Skip(ks.cust); err != nil {
		c.m.l2Bypassed.Inc()
		c.m.l2Miss.Inc()
		return Entry{}, "", false, err
	}
	start := time.Now()
	rctx, cancel := context.WithTimeout(ctx, c.opts.L2ReadTimeout)
	defer cancel()
	vals, err := c.rdb.MGet(rctx, c.epochKey, ks.gen, ks.data).Result()
	if err == nil && len(vals) != 3 {
		err = fmt.Errorf("MGET returned %d values for 3 keys", len(vals))
	}
	var ok bool
	if err == nil {
		if tag, ok = makeTag(vals[0], vals[1]); !ok {
			tag, err = c.l2NewTag(rctx, ks)
			vals[2] = nil // whatever is there was tagged under a lost key
		}
	}
	c.m.l2Dur.Observe(time.Since(start).Seconds())
	if err != nil {
		c.m.l2Miss.Inc()
		if ctx.Err() == nil { // not the callers giving up
			c.l2Failed("get", err)
		}
		return Entry{}, "", false, err
	}
	c.l2OK()
	raw, ok := vals[2].(string)
	if !ok {
		c.m.l2Miss.Inc()
		return Entry{}, tag, false, nil
	}
	e, blobTag, match, derr := decodeBlob([]byte(raw), ks.digest)
	switch {
	case derr != nil:
		c.m.l2Errors.WithLabelValues("decode").Inc()
		c.log.Warn("cache: undecodable value in redis; reloading", "key", ks.data, "err", derr)
	case !match:
		// Another pair whose key hashes collide with this one's.
		c.log.Warn("cache: redis value belongs to another customer or scope; reloading", "key", ks.data)
	case blobTag != tag:
		// Written before the customer's latest invalidation, or before
		// the latest epoch.
	default:
		c.m.l2Hit.Inc()
		return e, tag, true, nil
	}
	c.m.l2Miss.Inc()
	return Entry{}, tag, false, nil
}

// makeTag is the tag of values written under epoch and gen (MGET results),
// or false when either is missing.
func makeTag(epoch, gen any) (string, bool) {
	ep, ok1 := epoch.(string)
	g, ok2 := gen.(string)
	if !ok1 || !ok2 || ep == "" || g == "" {
		return "", false
	}
	return ep + "/" + g, true
}

// l2NewTag gives the namespace an epoch and the customer a generation where
// they are missing, random ones, never reused (SET NX: one that another
// process made meanwhile is kept), and returns the tag they make.
func (c *Cache) l2NewTag(ctx context.Context, ks l2Keys) (string, error) {
	var get *redis.SliceCmd
	_, err := c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.SetNX(ctx, c.epochKey, randomHex(genBytes), 0)
		p.SetNX(ctx, ks.gen, randomHex(genBytes), c.opts.L2TTL+genMargin)
		get = p.MGet(ctx, c.epochKey, ks.gen)
		return nil
	})
	if err != nil {
		return "", err
	}
	vals := get.Val()
	if len(vals) != 2 {
		return "", fmt.Errorf("MGET returned %d values for 2 keys", len(vals))
	}
	tag, ok := makeTag(vals[0], vals[1])
	if !ok {
		return "", errors.New("epoch or generation missing right after it was set")
	}
	return tag, nil
}

// l2Set writes a loaded entry back to Redis, tagged with the epoch and
// generation read before the load: if the customer was invalidated
// meanwhile (or the epoch moved, or either key was lost), the value is dead
// on arrival. Best effort.
func (c *Cache) l2Set(ks l2Keys, tag string, e Entry) {
	if len(e.Value) > maxL2Value || c.l2Skip(ks.cust) != nil {
		return
	}
	blob, err := encodeBlob(ks.digest, tag, e)
	if err != nil {
		c.log.Warn("cache: cannot encode entry for redis", "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.L2WriteTimeout)
	defer cancel()
	_, err = c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, ks.data, blob, c.opts.L2TTL)
		// The generation must outlive the value (see genMargin).
		p.PExpire(ctx, ks.gen, c.opts.L2TTL+genMargin)
		return nil
	})
	if err != nil {
		c.l2Failed("set", err)
	}
}

// publish gives the customer a new generation in Redis (its values there
// are dead from then on) and tells the other processes.
func (c *Cache) publish(ctx context.Context, h custHash) error {
	ctx, cancel := context.WithTimeout(ctx, c.opts.L2WriteTimeout)
	defer cancel()
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, genKey(c.opts.Namespace, h), randomHex(genBytes), c.opts.L2TTL+genMargin)
		p.Publish(ctx, c.channel, encodeInvalidation(h, c.id))
		return nil
	})
	if err != nil {
		c.l2Failed("invalidate", err)
	}
	return err
}

// newEpoch gives the namespace a new random epoch, so that every value in
// Redis is dead (see Options.NewEpoch), and tells the other processes to
// mark their L1 not fresh. From then on this process uses L2.
func (c *Cache) newEpoch(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.opts.L2WriteTimeout)
	defer cancel()
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, c.epochKey, randomHex(genBytes), 0)
		p.Publish(ctx, c.channel, encodeFlush(c.id))
		return nil
	})
	if err != nil {
		return err
	}
	c.epochDone.Store(true)
	c.log.Info("cache: new epoch in redis: values written before this start are not served")
	return nil
}

// redisRunID is the Redis server's run_id (a new one each time a server
// starts), or "" when INFO does not say (then every resubscription moves
// the epoch).
func (c *Cache) redisRunID(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, c.opts.L2WriteTimeout)
	defer cancel()
	info, err := c.rdb.Info(ctx, "server").Result()
	if err != nil {
		return ""
	}
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "run_id:"); ok {
			return v
		}
	}
	return ""
}

// l2Failed counts a Redis error and rests L2 for L2RetryAfter. An outage is
// logged once, when it starts.
func (c *Cache) l2Failed(op string, err error) {
	c.m.l2Errors.WithLabelValues(op).Inc()
	c.l2DownUntil.Store(time.Now().Add(c.opts.L2RetryAfter).UnixNano())
	if c.l2Outage.CompareAndSwap(false, true) {
		c.log.Warn("cache: redis failed; answering from L1 and load until it is back", "op", op, "err", err)
	}
}

func (c *Cache) l2OK() {
	if c.l2Outage.Load() && c.l2Outage.CompareAndSwap(true, false) {
		c.log.Info("cache: redis answers again")
	}
}

func (c *Cache) addPending(h custHash) {
	c.pendMu.Lock()
	defer c.pendMu.Unlock()
	if _, ok := c.pending[h]; ok {
		return
	}
	if len(c.pending) >= maxPending {
		if c.pendFull.CompareAndSwap(false, true) {
			c.log.Error("cache: too many invalidations waiting for redis; later ones are not retried (their L2 entries expire within L2TTL)",
				"max", maxPending)
		}
		return
	}
	c.pending[h] = struct{}{}
	c.pendingN.Store(int64(len(c.pending)))
	c.m.pendingInval.Inc()
}

func (c *Cache) removePending(h custHash) {
	if c.pendingN.Load() == 0 {
		return
	}
	c.pendMu.Lock()
	defer c.pendMu.Unlock()
	if _, ok := c.pending[h]; ok {
		delete(c.pending, h)
		c.pendingN.Store(int64(len(c.pending)))
		c.m.pendingInval.Dec()
		if len(c.pending) == 0 {
			c.pendFull.Store(false)
		}
	}
}

func (c *Cache) pendingHas(h custHash) bool {
	if c.pendingN.Load() == 0 {
		return false
	}
	c.pendMu.Lock()
	defer c.pendMu.Unlock()
	_, ok := c.pending[h]
	return ok
}

// retryPending sends the invalidations Redis has not taken yet, until one
// fails.
func (c *Cache) retryPending(ctx context.Context) {
	if c.pendingN.Load() == 0 {
		return
	}
	c.pendMu.Lock()
	hs := make([]custHash, 0, len(c.pending))
	for h := range c.pending {
		hs = append(hs, h)
	}
	c.pendMu.Unlock()
	for _, h := range hs {
		if ctx.Err() != nil || c.publish(ctx, h) != nil {
			return
		}
		c.removePending(h)
	}
}

// Run receives the invalidations other processes publish and drops their
// customers from L1, and retries the invalidations of this process that
// Redis did not take. It reconnects with backoff whenever Redis goes away,
// and on every (re)subscription marks all of L1 not fresh, since what was
// published meanwhile is lost. Without Redis it only waits. It returns nil
// when ctx is done or the Cache is closed.
func (c *Cache) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("cache: Run called twice")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(c.closing, cancel)
	defer stop()
	if c.rdb == nil {
		<-ctx.Done()
		return nil
	}
	backoff := backoffMin
	t := time.NewTimer(0)
	defer t.Stop()
	<-t.C
	for {
		connected, err := c.subscribeOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if connected {
			backoff = backoffMin
		}
		c.l2Failed("subscribe", err)
		t.Reset(rand.N(backoff) + 1)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		backoff = min(2*backoff, backoffMax)
	}
}

// subscribeOnce holds one subscription until it fails; connected says
// whether it was established.
func (c *Cache) subscribeOnce(ctx context.Context) (connected bool, err error) {
	ps := c.rdb.Subscribe(ctx) // no channel yet: no I/O
	defer ps.Close()
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() }) // unblocks a Receive
	defer stop()

	sctx, cancel := context.WithTimeout(ctx, subscribeTimeout)
	err = ps.Subscribe(sctx, c.channel)
	cancel()
	if err != nil {
		return false, fmt.Errorf("subscribe: %w", err)
	}
	// Messages published before the confirmation may be lost: only after it
	// may L1 be trusted again.
	for {
		msg, err := ps.ReceiveTimeout(ctx, subscribeTimeout)
		if err != nil {
			return false, fmt.Errorf("subscribe: %w", err)
		}
		if _, ok := msg.(*redis.Subscription); ok {
			break
		}
	}
	if c.opts.NewEpoch {
		// On start, and whenever Redis is another server than at the last
		// subscription (restarted, perhaps from a snapshot older than the
		// latest invalidations; or a replica that took over): what it holds
		// may be generations and values from before invalidations it lost.
		// Decided before L1 is flushed, and L2 closed (epochDone false)
		// before it is: a read between the flush and the move would
		// otherwise refill L1 from a restored value, as fresh.
		id := c.redisRunID(ctx)
		if !c.epochDone.Load() || id == "" || id != c.runID {
			if c.epochDone.Load() {
				c.log.Info("cache: redis restarted or was replaced; moving the epoch", "run_id", id)
			}
			c.epochDone.Store(false)
			c.flushL1()
			if err := c.newEpoch(ctx); err != nil {
				return true, fmt.Errorf("new epoch: %w", err)
			}
			c.runID = id
		} else {
			c.flushL1()
		}
	} else {
		c.flushL1()
	}
	c.l2DownUntil.Store(0)
	c.l2OK()
	c.subscribed.Store(true)
	c.m.subscribed.Inc()
	defer func() {
		c.subscribed.Store(false)
		c.m.subscribed.Dec()
	}()
	c.log.Debug("cache: subscribed to invalidations", "channel", c.channel)
	c.retryPending(ctx)

	heard := time.Now()
	retried := heard
	for {
		msg, err := ps.ReceiveTimeout(ctx, healthEvery)
		if err != nil {
			if ctx.Err() != nil {
				return true, nil
			}
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				return true, fmt.Errorf("receive: %w", err)
			}
			if time.Since(heard) > deadAfter {
				return true, errors.New("receive: no answer to ping")
			}
			if err := ps.Ping(ctx); err != nil {
				return true, fmt.Errorf("ping: %w", err)
			}
		} else {
			heard = time.Now()
			if m, ok := msg.(*redis.Message); ok {
				c.received(m.Payload)
			}
		}
		// Retried at this pace whether or not the channel is quiet: on a
		// busy channel the receive never times out.
		if c.pendingN.Load() > 0 && time.Since(retried) >= healthEvery {
			c.retryPending(ctx)
			retried = time.Now()
		}
	}
}

func (c *Cache) received(payload string) {
	if origin, ok := decodeFlush(payload); ok {
		if origin != c.id {
			c.flushL1() // another process moved the epoch
		}
		return
	}
	h, origin, ok := decodeInvalidation(payload)
	if !ok {
		c.log.Warn("cache: malformed invalidation message ignored", "len", len(payload))
		return
	}
	if origin == c.id {
		return // done when it was sent
	}
	c.invalidateHash(h)
	c.m.invPubsub.Inc()
}
