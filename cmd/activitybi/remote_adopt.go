package main

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/activitybi/activitybi/internal/upload"
)

// Spools of other tokens. Each remote spool is shipped with the token it was
// logged with (remote.go), and the server files every record under the
// shipping token's customer. When a person rotates a token (revokes the old
// one, configures a new one), the old token's spool may still hold records
// that no edge will ever ship with it. So a shipper that knows its token's
// customer (GET /v1/whoami, recorded in identity.json) also ships, with its
// own token, the spools of the same server that
//
//   - no edge ships (their shipper.lock is free: their edges exited, or
//     their token is refused and they gave the lock up), and
//   - hold records of its own customer: their identity.json says so, or the
//     server says their token id is (or was) one of its customer's tokens
//     (whoami ?token_id=, for a token that never reached the server before
//     it was revoked).
//
// It does that in place, with the spool's own offsets.json: the server
// stores on (customer, id), so a record sent twice (a crash between a POST
// and the offsets write) is stored once, and none is skipped. A spool of
// another customer, or of a token the server does not know as one of this
// customer's, is never shipped by this edge; it says so once, on stderr,
// with the spool's directory and its pending records.
//
// Legacy spools (<data>/remote/<URL key>/, one per server, written by every
// edge of the data directory whatever its token, before spools were per
// token) hold records that do not say which token logged them: the version
// that wrote them shipped them with whichever edge's token held the lock.
// The first edge that knows its customer and gets that spool's lock claims
// it (identity.json: legacy, customer, claimed_by_token_id), says so on
// stderr and ships it, once, as that version would have; from then on it is
// a spool of that customer like any other (records an old edge still
// running appends to it ship with that customer's tokens only, and only
// after that edge has exited: nothing of it is claimed or shipped while a
// live writer holds an open segment of it).

// adoptScanInterval is how often a shipper looks for spools to ship besides
// its own (a rotated token's, one whose edge exited).
const adoptScanInterval = 5 * time.Second

// adoptState is what a shipper learned about its token and the other
// spools of its server, for the life of the edge.
type adoptState struct {
	customer    string // the token's customer; "" = not known yet
	unsupported bool   // the server does not answer /v1/whoami
	// same caches the server's answer for the token ids of spools whose
	// customer is not recorded: true = the shipper's customer's.
	same    map[string]bool
	warned  map[string]bool // directories warned about
	shipped map[string]bool // other directories shipped at least once
	// asked is when the server's answers (same, unsupported) were last
	// taken; they are asked again after adoptAskAgain, since a token file
	// being restored or a proxy in the way during a deploy can answer
	// wrongly for a while.
	asked time.Time
}

// adoptAskAgain is how long the server's answers about other spools'
// tokens, and a "whoami is not supported", are trusted.
const adoptAskAgain = 10 * time.Minute

// maxAskIDs is how many token ids one whoami request asks about (the
// server takes up to 100).
const maxAskIDs = 100

// adoptLoop learns the shipper's customer, then ships the spools of the
// same customer that no edge ships, every adoptScanInterval, until ctx ends.
func (s *shipper) adoptLoop(ctx context.Context) {
	if s.adopt.customer == "" {
		if id, err := readRemoteIdentity(s.dir); err == nil && id.TokenID == s.tokenID {
			s.adopt.customer = id.Customer
		}
	}
	for wait := remoteRetryMin; s.adopt.customer == "" && !s.adopt.unsupported; wait = min(2*wait, remoteRetryMax) {
		who, err := s.sink.WhoAmI(ctx)
		switch {
		case err == nil && who.TokenID != "" && who.TokenID != s.tokenID:
			// Not the answer for this token: a proxy's cache, say. Trust
			// nothing of it.
			s.a.log.Warn("the server's /v1/whoami answered for another token; spools of other tokens are not shipped",
				"remote", s.url, "token_id", s.tokenID, "answered_token_id", who.TokenID)
			s.adopt.unsupported = true
		case err == nil:
			s.adopt.customer = who.Customer
			if err := s.recordCustomer(who.Customer); err != nil {
				s.a.log.Warn("record the remote spool's customer", "dir", s.dir, "err", err)
			}
		case errors.Is(err, upload.ErrWhoAmIUnsupported):
			s.adopt.unsupported = true
			s.a.log.Info("the server does not say whose token this is (GET /v1/whoami: an older activitybi server); "+
				"this edge ships its own spool only", "remote", s.url, "detail", err)
		default:
			if ctx.Err() != nil {
				return
			}
			s.a.log.Debug("remote: whoami", "err", err, "retry_in", wait)
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
	}
	s.adopt.asked = time.Now()
	for {
		if time.Since(s.adopt.asked) > adoptAskAgain {
			s.adopt.asked, s.adopt.same = time.Now(), nil
			if s.adopt.unsupported && s.adopt.customer == "" {
				s.adopt.unsupported = false
				if who, err := s.sink.WhoAmI(ctx); err == nil && who.TokenID == s.tokenID {
					s.adopt.customer = who.Customer
					if err := s.recordCustomer(who.Customer); err != nil {
						s.a.log.Warn("record the remote spool's customer", "dir", s.dir, "err", err)
					}
				} else {
					s.adopt.unsupported = true
				}
			}
		}
		s.scanSpools(ctx)
		select {
		case <-ctx.Done():
			return
		case <-time.After(adoptScanInterval):
		}
	}
}

// recordCustomer writes the token's customer into identity.json (the
// shipper holds the spool's lock).
func (s *shipper) recordCustomer(customer string) error {
	id, err := readRemoteIdentity(s.dir)
	if err != nil || id.TokenID != s.tokenID {
		id = remoteIdentity{}
	}
	if id.Customer == customer && id.URL == s.url {
		return nil
	}
	id.URL, id.TokenID, id.Customer = s.url, s.tokenID, customer
	return writeRemoteIdentity(s.dir, id)
}

// adoptKind says why a spool may be shipped with this edge's token.
type adoptKind int

const (
	adoptRecorded  adoptKind = iota // identity.json names this customer
	adoptConfirmed                  // the server says its token is this customer's
	adoptLegacy                     // a legacy spool, not claimed yet (or claimed by this customer)
)

// scanSpools ships, or warns about, the other spools of the server that
// hold records. Cheap enough to run every few seconds: a spool's records
// are counted (spool.Stat reads only the part not shipped yet) only when
// this edge may ship it or has not warned about it yet.
func (s *shipper) scanSpools(ctx context.Context) {
	spools, err := listRemoteSpools(s.a.cfg.DataDir, s.urlKey, false)
	if err != nil {
		s.a.log.Warn("list the remote spools", "err", err)
		return
	}
	me := s.adopt.customer
	var ask []remoteSpool
	for _, sp := range spools {
		if filepath.Clean(sp.Dir) == filepath.Clean(s.dir) {
			continue
		}
		var kind adoptKind
		switch {
		case sp.Err != "":
			s.warnSpool(sp, "it cannot be read ("+sp.Err+"); this edge does not ship it")
			continue
		case sp.Legacy && (sp.Customer == "" || sp.Customer == me) && (me != "" || s.adopt.unsupported):
			// With a server that cannot say whose token this is, the
			// previous version's spool is shipped as that version did.
			kind = adoptLegacy
		case me == "":
			s.warnSpool(sp, "this edge does not know its token's customer (the server does not answer GET /v1/whoami: "+
				"upgrade it), so it ships no spool but its own")
			continue
		case sp.Customer == me:
			kind = adoptRecorded
		case sp.Customer != "":
			s.warnSpool(sp, "its records are customer "+strconv.Quote(sp.Customer)+"'s, not this edge's ("+strconv.Quote(me)+
				"): they ship when an edge with a valid token of that customer runs for "+s.url+
				"; this edge never ships them")
			continue
		default:
			same, asked := s.adopt.same[sp.TokenID]
			switch {
			case !asked:
				if sp.countPending(); sp.Pending > 0 {
					ask = append(ask, sp) // asked once it holds records
				}
				continue
			case !same:
				s.warnUnknown(sp)
				continue
			}
			kind = adoptConfirmed
		}
		if sp.countPending(); sp.Pending > 0 {
			s.adoptSpool(ctx, sp, kind)
		}
		if ctx.Err() != nil {
			return
		}
	}
	if len(ask) == 0 {
		return
	}
	if len(ask) > maxAskIDs {
		ask = ask[:maxAskIDs] // the rest at the next scans
	}
	ids := make([]string, len(ask))
	for i, sp := range ask {
		ids[i] = sp.TokenID
	}
	who, err := s.sink.WhoAmI(ctx, ids...)
	if err != nil || who.Customer != me {
		if ctx.Err() == nil {
			s.a.log.Debug("remote: ask the server about other spools' tokens; asking again later", "err", err)
		}
		return
	}
	if s.adopt.same == nil {
		s.adopt.same = map[string]bool{}
	}
	for _, sp := range ask {
		same := slices.Contains(who.SameCustomer, sp.TokenID)
		s.adopt.same[sp.TokenID] = same
		if same {
			s.adoptSpool(ctx, sp, adoptConfirmed)
		} else {
			s.warnUnknown(sp)
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// adoptSpool ships sp with this edge's token if no edge ships it: it takes
// sp's lock (a live edge of sp holds it: that edge ships), checks sp's
// identity again under it, and drains sp until it is empty or ctx ends.
func (s *shipper) adoptSpool(ctx context.Context, sp remoteSpool, kind adoptKind) {
	lock, ok, err := tryLockFile(filepath.Join(sp.Dir, shipperLockName))
	if err != nil || !ok {
		return
	}
	defer lock.Close()
	me := s.adopt.customer
	id, err := readRemoteIdentity(sp.Dir)
	if err != nil {
		return // the next scan warns
	}
	switch kind {
	case adoptRecorded:
		if id.Customer != me {
			return
		}
	case adoptConfirmed:
		if id.Customer != "" && id.Customer != me {
			return
		}
		if id.Customer == "" {
			id.URL, id.TokenID, id.Customer = s.url, sp.TokenID, me
			if err := writeRemoteIdentity(sp.Dir, id); err != nil {
				s.a.log.Warn("record a remote spool's customer", "dir", sp.Dir, "err", err)
			}
		}
	case adoptLegacy:
		if id.Customer != "" && id.Customer != me {
			return // claimed by another customer's edge meanwhile
		}
		// An edge of the previous version still running writes to this
		// spool, with a token of its own that may be another customer's:
		// nothing is claimed or shipped until it has exited (its records
		// are then in a closed or orphaned segment, shipped like the rest).
		if sp.countPending(); sp.Live > 0 { // counted again under the lock
			s.warnOnce(sp, "an edge of the previous activitybi version still writes to it; it is shipped once that edge has exited")
			return
		}
		if id.Customer == "" && (me != "" || !id.Legacy) {
			id = remoteIdentity{URL: s.url, Customer: me, Legacy: true, ClaimedBy: s.tokenID}
			if err := writeRemoteIdentity(sp.Dir, id); err != nil {
				s.a.log.Error("cannot claim the spool of the previous version; not shipping it", "dir", sp.Dir, "err", err)
				return
			}
			s.a.log.Warn("shipping the remote spool of the previous activitybi version once, with this edge's token: "+
				"that version kept one spool per server for every token of this data directory, and its records do not say "+
				"which token logged them, so they are filed under this token's customer, as that version would have done; "+
				"from now on each token has a spool of its own",
				"dir", sp.Dir, "records", sp.Pending, "customer", me, "token_id", s.tokenID, "remote", s.url)
		}
	}
	// Said once per directory for the life of the edge (a spool an old
	// window keeps appending to is shipped every scan).
	loud := !s.adopt.shipped[sp.Dir]
	if s.adopt.shipped == nil {
		s.adopt.shipped = map[string]bool{}
	}
	s.adopt.shipped[sp.Dir] = true
	if loud && (kind != adoptLegacy || id.ClaimedBy != s.tokenID) {
		s.a.log.Info("shipping another token's remote spool of this customer with this edge's token (no edge ships it)",
			"dir", sp.Dir, "records", sp.Pending, "spool_token_id", sp.TokenID, "customer", me, "remote", s.url)
	}
	sink, err := upload.NewRemoteSink(upload.RemoteOptions{
		URL: s.url, Token: s.token, StateDir: sp.Dir, UserAgent: "activitybi/" + versionString(), Logger: s.a.log,
		HTTPClient: &http.Client{Timeout: remoteRequestTimeout, Transport: s.watch},
	})
	if err != nil {
		s.a.log.Error("ship another remote spool", "dir", sp.Dir, "err", err)
		return
	}
	defer sink.Close()
	up, err := upload.New(upload.Options{
		SpoolDir: filepath.Join(sp.Dir, remoteSpoolName), Warehouse: sink,
		BatchMaxRecords: remoteBatchRecords, BatchMaxBytes: remoteBatchBytes, PollInterval: remotePollInterval,
		RetryMin: remoteRetryMin, RetryMax: remoteRetryMax, Logger: s.a.log,
	})
	if err != nil {
		s.a.log.Error("ship another remote spool", "dir", sp.Dir, "err", err)
		return
	}
	if err := up.Drain(ctx); err != nil {
		if ctx.Err() == nil {
			s.a.log.Warn("shipping another remote spool stopped; trying again later", "dir", sp.Dir, "err", err)
		}
		return
	}
	if loud {
		s.a.log.Info("shipped another remote spool", "dir", sp.Dir, "spool_token_id", sp.TokenID, "customer", me)
	} else {
		s.a.log.Debug("shipped another remote spool", "dir", sp.Dir, "spool_token_id", sp.TokenID, "customer", me)
	}
}

// warnUnknown warns about a spool of a token the server does not know as
// one of this edge's customer's.
func (s *shipper) warnUnknown(sp remoteSpool) {
	s.warnSpool(sp, "it was logged with token "+sp.TokenID+", which the server does not know as one of customer "+
		strconv.Quote(s.adopt.customer)+"'s tokens (this edge's), so this edge never ships it; it ships when an edge with that token, "+
		"or with a token of that token's customer, runs for "+s.url+" (`activitybi token list` on the server shows whose token it is; "+
		"the server is asked again every 10 minutes)")
}

// warnSpool logs, once per directory for the life of the edge, that sp
// holds records this edge does not ship, and why (nothing while it holds
// none, or while a live edge of it holds its lock: that edge ships it).
func (s *shipper) warnSpool(sp remoteSpool, why string) {
	if s.adopt.warned[sp.Dir] {
		return
	}
	// Counted first: lockHeld takes the lock for a moment, which an edge
	// of that spool starting just then would find taken.
	if sp.countPending(); sp.Pending == 0 || lockHeld(filepath.Join(sp.Dir, shipperLockName)) {
		return
	}
	s.warnOnce(sp, why)
}

// warnOnce is warnSpool for a spool whose lock this edge holds.
func (s *shipper) warnOnce(sp remoteSpool, why string) {
	if s.adopt.warned[sp.Dir] {
		return
	}
	if sp.countPending(); sp.Pending == 0 {
		return
	}
	if s.adopt.warned == nil {
		s.adopt.warned = map[string]bool{}
	}
	s.adopt.warned[sp.Dir] = true
	s.a.log.Warn("a remote spool holds records this edge does not ship: "+why, "dir", sp.Dir, "records", sp.Pending)
}
