package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/activitybi/activitybi/internal/auth"
	"github.com/activitybi/activitybi/internal/config"
	"github.com/activitybi/activitybi/internal/redact"
	"github.com/activitybi/activitybi/internal/server"
	"github.com/activitybi/activitybi/internal/spool"
	"github.com/activitybi/activitybi/internal/upload"
)

// The remote edge: `activitybi mcp --remote URL --token T`. It spools
// locally, as every edge does (durable at once, works offline), and ships
// its spool to the server's /v1/events and /v1/insights with the uploader
// and an upload.RemoteSink. Records keep the ids they were given at append
// and the server stores on (customer, id), so re-sending is harmless:
// exactly once, end to end.

// Layout under the data directory: <data>/remote/<URL key>-<token id>/,
// one directory per server and token (the URL key is the first 12 hex of
// sha256(URL); the token id is the token's public part, never its secret),
// holds spool/ (its own, so a local core on the same data directory never
// loads these events), offsets.json and quarantine.ndjson
// (upload.RemoteSink), shipper.lock and identity.json (remote_spools.go:
// the server, the token id and, once the server has said it, the token's
// customer). A spool is shipped with its own token, or with another token
// of the same customer (remote_adopt.go), never with another customer's:
// the server files every record under the shipping token's customer.
// <data>/remote/<URL key>/ (no token id) is the one spool per server of
// versions before this layout (legacy; see remote_adopt.go).
const (
	remoteDirName      = "remote"
	remoteSpoolName    = "spool"
	shipperLockName    = "shipper.lock"
	remoteIdentityName = "identity.json"
	remoteURLHashHex   = 12
	remoteDirPerm      = 0o700
	remoteFilePerm     = 0o600
)

// Remote shipping intervals and sizes.
const (
	// shipperLockRetry is how often an edge whose sibling ships the spool
	// tries to take over (so shipping goes on when that edge exits).
	shipperLockRetry = 2 * time.Second
	// remoteDrainTimeout bounds the last shipment when the edge exits:
	// the client is closing; what does not ship in time stays in the
	// spool and ships at the next start.
	remoteDrainTimeout = 5 * time.Second
	// remotePollInterval: a laptop's edge looks for new records five
	// times a second rather than the core's twenty.
	remotePollInterval = 200 * time.Millisecond
	// remoteBatchRecords and remoteBatchBytes keep one uploader batch
	// within one request (the server takes 10,000 records, 16 MiB).
	remoteBatchRecords = upload.DefaultRemoteMaxRecords
	remoteBatchBytes   = 4 << 20
	// remoteRetryMin and remoteRetryMax bound the backoff while the server
	// is unreachable or refuses the token.
	remoteRetryMin = 250 * time.Millisecond
	remoteRetryMax = 30 * time.Second
	// remoteRequestTimeout bounds one request (a full body over a slow
	// link included), as upload.RemoteSink's own client does.
	remoteRequestTimeout = 2 * time.Minute
)

// envToken is the name of the variable holding the --remote token
// (config.EnvToken: known to the configuration, but not a setting).
const envToken = config.EnvToken

// checkRemoteURL accepts https, and plain http only to a loopback host:
// the token and the events must not cross a network in clear text. Its
// errors never show the URL's user info, query or fragment (where a token
// put by mistake would be) or, when it does not parse, the URL itself: they
// go to stderr, which Claude clients keep in their logs.
func checkRemoteURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // ue's message holds the whole URL
		}
		return nil, fmt.Errorf("--remote: not a URL: %w", err)
	}
	if u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		// Not shown: it may be the token, given to the wrong flag.
		return nil, errors.New("--remote: want the server's URL, e.g. https://activitybi.example.com")
	}
	shown := redact.Location(u)
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil || u.ForceQuery {
		return nil, fmt.Errorf("--remote %q: the URL must not carry a query, fragment or user info (the token goes in --token)", shown)
	}
	if u.Scheme == "http" && !isLoopbackHost(u.Hostname()) {
		return nil, fmt.Errorf("--remote %q: plain http is allowed only to a server on this machine (localhost, 127.0.0.1, ::1); "+
			"use https:// so the token and the events are not sent in clear text", shown)
	}
	return u, nil
}

func isLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// remoteURLKey is the first 12 hex of sha256(URL without a trailing
// slash): the part of a remote spool's directory name that names its
// server.
func remoteURLKey(u *url.URL) string {
	sum := sha256.Sum256([]byte(strings.TrimRight(u.String(), "/")))
	return hex.EncodeToString(sum[:])[:remoteURLHashHex]
}

// remoteDir is <data>/remote/<URL key>-<token id>: one spool per server and
// token, so that edges with tokens of different customers never share one
// (and the edges of one token, one per Claude window, always do).
func remoteDir(dataDir string, u *url.URL, tokenID string) string {
	return filepath.Join(dataDir, remoteDirName, remoteURLKey(u)+"-"+tokenID)
}

// legacyRemoteDir is <data>/remote/<URL key>: the spool every edge of the
// data directory shared for a server, whatever its token, before spools
// were per token.
func legacyRemoteDir(dataDir string, u *url.URL) string {
	return filepath.Join(dataDir, remoteDirName, remoteURLKey(u))
}

func (a *app) runRemoteEdge(ctx context.Context, o edgeOptions) error {
	if o.remote == "" {
		return errors.New("--token goes with --remote URL (the activitybi server to ship to)")
	}
	u, err := checkRemoteURL(o.remote)
	if err != nil {
		return err
	}
	token := o.token
	if token == "" {
		token = os.Getenv(envToken)
	}
	if token == "" {
		return fmt.Errorf("--remote needs a bearer token: $%s (preferred: a command line shows in `ps`) or --token T "+
			"(create one on the server with `activitybi token create --customer NAME`)", envToken)
	}
	// The token's id names its spool; the token itself is never shown.
	tokenID, ok := auth.TokenID(token)
	if !ok {
		return fmt.Errorf("the --remote token ($%s or --token) is not an activitybi token: want %s<%d-character id>_<secret>, "+
			"as `activitybi token create` prints it", envToken, auth.Prefix, auth.IDLen)
	}
	dir := remoteDir(a.cfg.DataDir, u, tokenID)
	spoolDir := filepath.Join(dir, remoteSpoolName)
	if err := os.MkdirAll(spoolDir, remoteDirPerm); err != nil {
		return err
	}
	dur, err := spool.ParseDurability(a.cfg.Durability)
	if err != nil {
		return err
	}
	sw, err := spool.Open(spool.Options{
		Dir: spoolDir, Durability: dur,
		SegmentMaxBytes: a.cfg.Spool.SegmentMaxBytes, SegmentMaxAge: a.cfg.Spool.SegmentMaxAge,
		FsyncInterval: a.cfg.Spool.FsyncInterval, MaxPending: a.cfg.Spool.MaxPending, Logger: a.log,
	})
	if err != nil {
		return err
	}
	swClosed := false
	closeSpool := func() {
		if !swClosed {
			swClosed = true
			if err := sw.Close(); err != nil {
				a.log.Error("close spool", "err", err)
			}
		}
	}
	defer closeSpool()

	// The local identity fills the record; the server stores it under the
	// token's customer instead.
	mo := server.MCPOptions{
		Appender: sw, Identity: server.FixedIdentity(a.cfg.Customer), Source: "mcp",
		Version: versionString(), Logger: a.log, Recent: server.NewRecentIDs(edgeRecentIDs),
	}
	ms, err := server.NewMCPServer(mo)
	if err != nil {
		return err
	}
	fast, err := server.NewStdioFast(mo)
	if err != nil {
		return err
	}
	sh := &shipper{a: a, url: u.String(), urlKey: remoteURLKey(u), token: token, tokenID: tokenID, dir: dir, spoolDir: spoolDir}
	defer sh.release()
	// The server's other tools, forwarded (remote_tools.go).
	fwdCtx, stopFwd := context.WithCancel(ctx)
	fwd := newForwarder(a, u, token, ms)
	var fwdDone sync.WaitGroup
	fwdDone.Go(func() { fwd.run(fwdCtx) })
	defer func() { stopFwd(); fwdDone.Wait() }()

	shipCtx, stopShip := context.WithCancel(ctx)
	var shipDone sync.WaitGroup
	shipDone.Add(1)
	go func() { defer shipDone.Done(); sh.run(shipCtx) }()

	a.log.Debug("remote edge serving MCP on stdio", "remote", u.Redacted(), "customer", a.cfg.Customer, "spool", spoolDir)
	a.trimAtStart()
	go a.trimAfterStart(shipCtx, edgeTrimDelay)
	err = ms.Run(ctx, fast.Transport(a.stdin, a.stdout))
	// Intake stopped: stop shipping, close the segment (fsync), then ship
	// what is left for a bounded time.
	stopShip()
	shipDone.Wait()
	closeSpool()
	sh.drain(ctx)
	if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, io.EOF) {
		return fmt.Errorf("mcp: %w", err)
	}
	return nil
}

// shipper ships one remote spool while it holds <dir>/shipper.lock; every
// edge of that spool has one, and one at a time ships. While it ships, it
// also ships the spools of other tokens of its customer that no edge ships
// (remote_adopt.go).
type shipper struct {
	a                     *app
	url, urlKey           string
	token, tokenID        string
	dir, spoolDir         string
	lock                  *os.File // held; nil = not (yet)
	sink                  *upload.RemoteSink
	up                    *upload.Uploader
	warnedLockUnsupported bool
	// watch sees every answer of the server: a refused token stops the
	// uploader and gives the lock up (see run).
	watch *tokenWatch
	// adopt is what the shipper learned about its token and the other
	// spools of its server (remote_adopt.go). Only the goroutine that runs
	// the shipper, and the adopting goroutine ship starts and waits for,
	// use it, never at once.
	adopt adoptState
}

// tokenWatch is the sink's transport: it notes the server refusing the
// token (401, 403), so that an edge with a revoked or expired token does
// not hold the shipper lock against a sibling edge whose token is valid.
type tokenWatch struct {
	next    *http.Transport
	refused chan struct{} // 1 buffered: a refusal not yet acted on
}

func newTokenWatch() *tokenWatch {
	return &tokenWatch{next: http.DefaultTransport.(*http.Transport).Clone(), refused: make(chan struct{}, 1)}
}

func (w *tokenWatch) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := w.next.RoundTrip(r)
	if err == nil && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden) {
		select {
		case w.refused <- struct{}{}:
		default:
		}
	}
	return resp, err
}

// acquire takes the shipper lock without waiting and, the first time it
// gets it, closes dead edges' segments and makes the uploader.
func (s *shipper) acquire() (bool, error) {
	if s.up != nil {
		return true, nil
	}
	f, ok, err := tryLockFile(filepath.Join(s.dir, shipperLockName))
	if err != nil || !ok {
		return false, err
	}
	s.lock = f
	s.recordIdentity()
	if _, err := spool.Recover(s.spoolDir, s.a.log, nil); err != nil {
		// The uploader recovers again before it reads, and every 2 s.
		s.a.log.Warn("recover remote spool", "err", err)
	}
	if s.watch == nil {
		s.watch = newTokenWatch()
	}
	s.sink, err = upload.NewRemoteSink(upload.RemoteOptions{
		URL: s.url, Token: s.token, StateDir: s.dir, UserAgent: "activitybi/" + versionString(), Logger: s.a.log,
		HTTPClient: &http.Client{Timeout: remoteRequestTimeout, Transport: s.watch},
	})
	if err == nil {
		s.up, err = upload.New(upload.Options{
			SpoolDir: s.spoolDir, Warehouse: s.sink,
			BatchMaxRecords: remoteBatchRecords, BatchMaxBytes: remoteBatchBytes, PollInterval: remotePollInterval,
			RetryMin: remoteRetryMin, RetryMax: remoteRetryMax, Logger: s.a.log,
		})
	}
	if err != nil {
		s.release()
		return false, err
	}
	s.a.log.Debug("shipping the remote spool", "remote", s.url, "spool", s.spoolDir)
	return true, nil
}

// run ships until ctx ends, taking over from a sibling edge when it exits.
// When the server refuses this edge's token (revoked, expired), it stops
// shipping and gives the lock up, so that an edge with a valid token of the
// same customer ships the spool (remote_adopt.go); it tries again later,
// less and less often while the token stays refused.
func (s *shipper) run(ctx context.Context) {
	wait, refusals := shipperLockRetry, 0
	for {
		ok, err := s.acquire()
		if err != nil && !s.warnedLockUnsupported {
			s.warnedLockUnsupported = true
			s.a.log.Error("cannot ship the remote spool; events stay in it", "spool", s.spoolDir, "err", err)
		}
		if ok {
			refused, err := s.ship(ctx)
			if ctx.Err() != nil {
				return
			}
			switch {
			case refused:
				refusals++
				wait = min(shipperLockRetry<<refusals, remoteRetryMax)
				s.a.log.Warn("the server refuses the token of this edge (revoked or expired?): its events stay in its spool, "+
					"and an edge with a valid token of the same customer ships them; to ship from this one, create a token with "+
					"`activitybi token create --customer NAME` on the server and pass it in $"+envToken+" (or --token)",
					"remote", s.url, "token_id", s.tokenID, "spool", s.spoolDir, "retry_in", wait)
			case err != nil:
				wait = remoteRetryMax
				s.a.log.Error("remote shipping stopped; events stay in the spool; retrying", "err", err, "retry_in", wait)
			}
			s.release()
		} else {
			wait, refusals = shipperLockRetry, 0
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// ship runs the uploader until ctx ends or the server refuses the token.
func (s *shipper) ship(ctx context.Context) (refused bool, err error) {
	select { // a refusal seen before (by drain, or an earlier run) is old news
	case <-s.watch.refused:
	default:
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Learn the token's customer and ship other spools of it meanwhile
	// (remote_adopt.go); a refusal stops that too.
	var adopting sync.WaitGroup
	adopting.Go(func() { s.adoptLoop(rctx) })
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-s.watch.refused:
			refused = true
			cancel()
		case <-rctx.Done():
		}
	}()
	err = s.up.Run(rctx)
	cancel()
	<-stopped
	adopting.Wait()
	return refused, err
}

// drain ships what is left, for at most remoteDrainTimeout, unless a
// sibling edge holds the lock (it ships this edge's closed segment).
func (s *shipper) drain(ctx context.Context) {
	ok, err := s.acquire()
	if err != nil || !ok {
		if err == nil {
			s.a.log.Debug("another edge ships the remote spool")
		}
		return
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), remoteDrainTimeout)
	defer cancel()
	if err := s.up.Drain(dctx); err != nil {
		st := s.up.Status()
		s.a.log.Warn("not everything shipped before exit; the rest stays in the spool and ships at the next start",
			"remote", s.url, "backlog_bytes", st.BacklogBytes, "last_error", st.LastError)
	}
}

// release drops the lock and the sink's connections.
func (s *shipper) release() {
	if s.sink != nil {
		s.sink.Close()
		s.sink = nil
	}
	if s.watch != nil {
		s.watch.next.CloseIdleConnections()
	}
	s.up = nil
	if s.lock != nil {
		s.lock.Close()
		s.lock = nil
	}
}
