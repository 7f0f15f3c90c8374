package upload

// The remote sink: the Warehouse an edge with --remote uses. The Uploader
// tails the edge's own spool exactly as the core does; instead of a database
// transaction, Load POSTs the batch to an activitybi server's /v1/events and
// /v1/insights and keeps the uploader's offsets (and what it quarantines) in
// small local files.
//
// Exactly once, end to end: every spooled record already carries its id
// (activity_id, atom_id), and the server stores on (customer, id), the
// warehouse's primary key. The offsets are written only after every request
// of a batch succeeded, so a crash or error between a POST and that write
// re-sends records the server already has, and the server keeps one row.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/activitybi/activitybi/internal/event"
	"github.com/activitybi/activitybi/internal/fsutil"
	"github.com/activitybi/activitybi/internal/telemetry"
	"github.com/activitybi/activitybi/internal/warehouse"
)

// Files in RemoteOptions.StateDir.
const (
	// RemoteOffsetsFile holds the committed spool offsets (JSON), replaced
	// atomically after each delivered batch.
	RemoteOffsetsFile = "offsets.json"
	// RemoteQuarantineFile collects records the server refused for good
	// (and records the uploader could not decode), one JSON object a line,
	// fsynced, so nothing is dropped.
	RemoteQuarantineFile = "quarantine.ndjson"

	remoteDirPerm  = 0o700
	remoteFilePerm = 0o600
)

// Request limits. They mirror server.MaxIngestRecords and
// server.MaxIngestBody (internal/server imports this package, so it cannot
// be imported here); a request past either gets 413.
const (
	DefaultRemoteMaxRecords = 10_000
	DefaultRemoteMaxBody    = 16 << 20
)

// Remote timing.
const (
	// defaultRemoteTimeout bounds one HTTP request (a full 16 MiB body over
	// a slow link included) when RemoteOptions.HTTPClient is nil.
	defaultRemoteTimeout = 2 * time.Minute
	// defaultRetryAfter is the wait after a 429 without a usable
	// Retry-After; maxRetryAfter caps what a server may ask for, so a
	// misconfigured proxy cannot stall shipping for hours.
	defaultRetryAfter = time.Second
	maxRetryAfter     = 5 * time.Minute
	// maxResponseBody bounds what is read of a response: the per-record
	// results of 10,000 records are well under 2 MiB.
	maxResponseBody = 32 << 20
)

// RemoteOptions configure a RemoteSink.
type RemoteOptions struct {
	// URL is the server's base URL (http or https), e.g.
	// https://activitybi.example.com; /v1/events and /v1/insights are
	// appended to its path. Required.
	URL string
	// Token is the bearer token; the server stores every record under its
	// customer. Required.
	Token string
	// StateDir holds offsets.json and quarantine.ndjson; created (0700) when
	// missing. Required.
	StateDir string
	// HTTPClient sends the requests; nil = a client with a 2 minute timeout.
	HTTPClient *http.Client
	// MaxRequestRecords and MaxRequestBytes split a batch into requests;
	// 0 = the server's limits (10,000 records, 16 MiB).
	MaxRequestRecords int
	MaxRequestBytes   int
	// UserAgent is sent with every request; "" = "activitybi".
	UserAgent string
	Logger    *slog.Logger // nil = discard
	Now       func() time.Time
}

// RemoteSink is an upload.Warehouse that ships batches to an activitybi
// server. It is safe for concurrent use, though one Uploader calls it from
// one goroutine.
type RemoteSink struct {
	opts    RemoteOptions
	base    string // URL without a trailing slash
	client  *http.Client
	ownHTTP bool // client made here: Close releases its connections
	log     *slog.Logger
	now     func() time.Time

	mu        sync.Mutex // guards the fields below; held across a whole Load
	offsets   map[string]warehouse.Offset
	notBefore time.Time           // no request before this (a 429's Retry-After)
	qseen     map[string]struct{} // segment\x00offset of quarantined records; nil = not read yet

	auditSkipped atomic.Int64 // audit records not shipped (see Load)
}

var _ Warehouse = (*RemoteSink)(nil)

// NewRemoteSink validates opts and creates StateDir. It sends nothing.
func NewRemoteSink(opts RemoteOptions) (*RemoteSink, error) {
	if opts.URL == "" {
		return nil, errors.New("remote: URL is required")
	}
	u, err := url.Parse(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("remote: URL %q: %w", opts.URL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("remote: URL %q must start with https:// (or http:// for a loopback server)", opts.URL)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("remote: URL %q names no host", opts.URL)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("remote: URL %q must not carry a query, fragment or user info", opts.URL)
	}
	if opts.Token == "" {
		return nil, errors.New("remote: Token is required")
	}
	if opts.StateDir == "" {
		return nil, errors.New("remote: StateDir is required")
	}
	if opts.MaxRequestRecords <= 0 || opts.MaxRequestRecords > DefaultRemoteMaxRecords {
		opts.MaxRequestRecords = DefaultRemoteMaxRecords
	}
	if opts.MaxRequestBytes <= 0 || opts.MaxRequestBytes > DefaultRemoteMaxBody {
		opts.MaxRequestBytes = DefaultRemoteMaxBody
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "activitybi"
	}
	if err := os.MkdirAll(opts.StateDir, remoteDirPerm); err != nil {
		return nil, fmt.Errorf("remote: state dir: %w", err)
	}
	s := &RemoteSink{
		opts: opts, base: strings.TrimRight(u.String(), "/"),
		client: opts.HTTPClient, log: telemetry.OrDiscard(opts.Logger), now: opts.Now,
	}
	if s.client == nil {
		// Its own transport, so Close releases exactly its connections.
		s.client = &http.Client{Timeout: defaultRemoteTimeout, Transport: http.DefaultTransport.(*http.Transport).Clone()}
		s.ownHTTP = true
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// SkippedAudit is how many audit records Load has skipped (not shipped)
// since the sink was made.
func (s *RemoteSink) SkippedAudit() int64 { return s.auditSkipped.Load() }

// Close releases idle connections of a client the sink made itself.
func (s *RemoteSink) Close() {
	if s.ownHTTP {
		s.client.CloseIdleConnections()
	}
}

// ---- Offsets

// offsetsFile is offsets.json.
type offsetsFile struct {
	URL     string       `json:"url"` // for a person reading the file
	Offsets []offsetJSON `json:"offsets"`
}

type offsetJSON struct {
	Segment string `json:"segment"`
	Offset  int64  `json:"offset"`
	Records int64  `json:"records"`
	Closed  bool   `json:"closed,omitempty"`
}

// Offsets reads offsets.json (none yet: no offsets).
func (s *RemoteSink) Offsets(context.Context) (map[string]warehouse.Offset, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.readOffsetsLocked(); err != nil {
		return nil, err
	}
	out := make(map[string]warehouse.Offset, len(s.offsets))
	for k, o := range s.offsets {
		out[k] = o
	}
	return out, nil
}

func (s *RemoteSink) readOffsetsLocked() error {
	b, err := os.ReadFile(filepath.Join(s.opts.StateDir, RemoteOffsetsFile))
	if errors.Is(err, os.ErrNotExist) {
		s.offsets = map[string]warehouse.Offset{}
		return nil
	}
	if err != nil {
		return fmt.Errorf("remote: read offsets: %w", err)
	}
	var f offsetsFile
	if err := json.Unmarshal(b, &f); err != nil {
		// Written atomically, so this is not a torn write: refuse rather
		// than re-send (or skip) the whole spool.
		return fmt.Errorf("remote: %s is not valid JSON (%v); fix or remove it (removing re-sends the spool, which the server deduplicates)",
			filepath.Join(s.opts.StateDir, RemoteOffsetsFile), err)
	}
	s.offsets = make(map[string]warehouse.Offset, len(f.Offsets))
	for _, o := range f.Offsets {
		s.offsets[o.Segment] = warehouse.Offset{Segment: o.Segment, Offset: o.Offset, Records: o.Records, Closed: o.Closed}
	}
	return nil
}

// ForgetOffsets drops the offsets of deleted segments.
func (s *RemoteSink) ForgetOffsets(_ context.Context, segments []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.offsets == nil {
		if err := s.readOffsetsLocked(); err != nil {
			return err
		}
	}
	next := make(map[string]warehouse.Offset, len(s.offsets))
	for k, o := range s.offsets {
		next[k] = o
	}
	for _, id := range segments {
		delete(next, id)
	}
	return s.writeOffsetsLocked(next)
}

// writeOffsetsLocked replaces offsets.json with next (tmp, fsync, rename,
// fsync dir) and adopts next only once that succeeded.
func (s *RemoteSink) writeOffsetsLocked(next map[string]warehouse.Offset) error {
	f := offsetsFile{URL: s.base, Offsets: make([]offsetJSON, 0, len(next))}
	for _, o := range next {
		f.Offsets = append(f.Offsets, offsetJSON{Segment: o.Segment, Offset: o.Offset, Records: o.Records, Closed: o.Closed})
	}
	sort.Slice(f.Offsets, func(i, j int) bool { return f.Offsets[i].Segment < f.Offsets[j].Segment })
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(s.opts.StateDir, RemoteOffsetsFile), append(b, '\n'), remoteFilePerm, ""); err != nil {
		return fmt.Errorf("remote: write offsets: %w", err)
	}
	s.offsets = next
	return nil
}

// ---- Load

// remoteEvent is an event as POST /v1/events takes it (event.DecodeInput):
// no customer (the server takes it from the token and refuses a record
// naming one) and none of the pipeline's columns.
type remoteEvent struct {
	ActivityID          string          `json:"activity_id"`
	TS                  time.Time       `json:"ts"`
	Activity            string          `json:"activity"`
	AnonymousCustomerID string          `json:"anonymous_customer_id,omitempty"`
	Features            json.RawMessage `json:"feature_json,omitempty"`
	RevenueImpact       *float64        `json:"revenue_impact,omitempty"`
	Link                string          `json:"link,omitempty"`
}

// remoteInsight is an insight as POST /v1/insights takes it
// (event.DecodeInsightInput).
type remoteInsight struct {
	AtomID              string          `json:"atom_id"`
	Subject             string          `json:"subject"`
	Metric              string          `json:"metric"`
	Value               json.RawMessage `json:"value"`
	ProvenanceQueryHash string          `json:"provenance_query_hash,omitempty"`
	TS                  time.Time       `json:"ts"`
}

// remoteRecord is one encoded record on its way.
type remoteRecord struct {
	kind string // KindEvent or KindInsight
	id   string
	line []byte
}

// ingestResult is the body of a /v1/events or /v1/insights answer
// (server.IngestResult).
type ingestResult struct {
	Results []struct {
		Index  int    `json:"index"`
		ID     string `json:"id"`
		Status string `json:"status"` // accepted, duplicate, rejected
		Error  string `json:"error"`
	} `json:"results"`
}

// remoteError is a request the server (or the network) did not complete.
// Every one is retryable: only per-record rejections are permanent.
type remoteError struct {
	status     int // 0 = no response
	retryAfter time.Duration
	msg        string
}

func (e *remoteError) Error() string { return e.msg }

// rejection is one record the server refused for good.
type rejection struct {
	kind, id, reason string
}

// Load sends the batch's events and insights, appends its quarantine records
// to quarantine.ndjson and, once all of that succeeded, writes its offsets.
// A record the server rejects makes the whole Load fail with an error
// wrapping warehouse.ErrRecordRejected (the uploader then isolates it and
// calls Load again with it in Batch.Quarantine); the batch's other records
// are delivered already and count as duplicates when re-sent.
func (s *RemoteSink) Load(ctx context.Context, b *warehouse.Batch) (warehouse.LoadResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var res warehouse.LoadResult
	if s.offsets == nil {
		if err := s.readOffsetsLocked(); err != nil {
			return res, err
		}
	}

	events, err := s.encodeEvents(b.Events)
	if err != nil {
		return res, err
	}
	insights, err := s.encodeInsights(b.Insights)
	if err != nil {
		return res, err
	}
	// Audit records are not shipped, by design: the server writes its own
	// audit row for every access it serves, under the token's principal,
	// which an edge's self-reported record could not be trusted to match;
	// what this edge serves from its cache came from such an audited
	// access. So they are deliberately dropped here — counted as skipped
	// in the result and, once the batch is delivered, in SkippedAudit —
	// and their offsets advance with the batch: never quarantined as an
	// unknown kind, never sent to a route that does not take them.
	res.AuditSkipped = len(b.Audit)
	var rejected []rejection
	for _, g := range events {
		if err := s.send(ctx, "/v1/events", g.source, g.recs, &res, &rejected); err != nil {
			return warehouse.LoadResult{}, err
		}
	}
	for _, g := range insights {
		if err := s.send(ctx, "/v1/insights", g.source, g.recs, &res, &rejected); err != nil {
			return warehouse.LoadResult{}, err
		}
	}
	if len(rejected) > 0 {
		r := rejected[0]
		more := ""
		if len(rejected) > 1 {
			more = fmt.Sprintf(" (and %d more of the batch's %d records)", len(rejected)-1, len(b.Events)+len(b.Insights))
		}
		return warehouse.LoadResult{}, fmt.Errorf("%w: the server %s rejected %s %s: %s%s",
			warehouse.ErrRecordRejected, s.base, r.kind, r.id, r.reason, more)
	}

	if len(b.Quarantine) > 0 {
		n, err := s.quarantineLocked(b.Quarantine)
		if err != nil {
			return warehouse.LoadResult{}, err
		}
		res.Quarantined = n
	}
	if len(b.Offsets) > 0 {
		next := make(map[string]warehouse.Offset, len(s.offsets)+len(b.Offsets))
		for k, o := range s.offsets {
			next[k] = o
		}
		for _, o := range b.Offsets {
			next[o.Segment] = o
		}
		if err := s.writeOffsetsLocked(next); err != nil {
			return warehouse.LoadResult{}, err
		}
	}
	if res.AuditSkipped > 0 {
		s.auditSkipped.Add(int64(res.AuditSkipped))
		s.log.Debug("remote: audit records not shipped (the server audits its own accesses)", "count", res.AuditSkipped)
	}
	return res, nil
}

// sourceGroup is the records of one _source, sent with ?source=.
type sourceGroup struct {
	source string
	recs   []remoteRecord
}

// group appends rec to the group of source, keeping first-seen order.
func group(gs []sourceGroup, source string, rec remoteRecord) []sourceGroup {
	if source == "" {
		source = event.SourceMCP
	}
	for i := range gs {
		if gs[i].source == source {
			gs[i].recs = append(gs[i].recs, rec)
			return gs
		}
	}
	return append(gs, sourceGroup{source: source, recs: []remoteRecord{rec}})
}

func (s *RemoteSink) encodeEvents(evs []event.Event) ([]sourceGroup, error) {
	var gs []sourceGroup
	for i := range evs {
		e := &evs[i]
		line, err := marshalLine(remoteEvent{
			ActivityID: e.ActivityID, TS: e.TS, Activity: e.Activity, AnonymousCustomerID: e.AnonymousCustomerID,
			Features: e.Features, RevenueImpact: e.RevenueImpact, Link: e.Link,
		})
		if err != nil {
			return nil, fmt.Errorf("%w: encode event %s: %v", warehouse.ErrRecordRejected, e.ActivityID, err)
		}
		gs = group(gs, e.Source, remoteRecord{kind: KindEvent, id: e.ActivityID, line: line})
	}
	return gs, nil
}

func (s *RemoteSink) encodeInsights(xs []event.Insight) ([]sourceGroup, error) {
	var gs []sourceGroup
	for i := range xs {
		x := &xs[i]
		line, err := marshalLine(remoteInsight{
			AtomID: x.AtomID, Subject: x.Subject, Metric: x.Metric, Value: x.Value,
			ProvenanceQueryHash: x.ProvenanceQueryHash, TS: x.TS,
		})
		if err != nil {
			return nil, fmt.Errorf("%w: encode insight %s: %v", warehouse.ErrRecordRejected, x.AtomID, err)
		}
		gs = group(gs, x.Source, remoteRecord{kind: KindInsight, id: x.AtomID, line: line})
	}
	return gs, nil
}

// marshalLine encodes v as one JSON line without escaping HTML, so
// feature_json and value travel byte for byte as stored.
func marshalLine(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// send posts recs in requests under the size limits and tallies the
// outcome of every record.
func (s *RemoteSink) send(ctx context.Context, path, source string, recs []remoteRecord, res *warehouse.LoadResult, rejected *[]rejection) error {
	for len(recs) > 0 {
		n, size := 0, 0
		for n < len(recs) && n < s.opts.MaxRequestRecords {
			l := len(recs[n].line) + 1
			if n > 0 && size+l > s.opts.MaxRequestBytes {
				break
			}
			size += l
			n++
		}
		if err := s.post(ctx, path, source, recs[:n], res, rejected); err != nil {
			return err
		}
		recs = recs[n:]
	}
	return nil
}

// post sends one request. A 413 (the server's limits are lower than ours)
// halves the request; a single record too large for the server is
// rejected.
func (s *RemoteSink) post(ctx context.Context, path, source string, recs []remoteRecord, res *warehouse.LoadResult, rejected *[]rejection) error {
	if err := s.waitRetryAfter(ctx); err != nil {
		return err
	}
	var body bytes.Buffer
	for _, r := range recs {
		body.Write(r.line)
		body.WriteByte('\n')
	}
	target := s.base + path + "?source=" + url.QueryEscape(source)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body.Bytes()))
	if err != nil {
		return fmt.Errorf("remote: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+s.opts.Token)
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", s.opts.UserAgent)
	resp, err := s.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is in the message already
		}
		return &remoteError{msg: fmt.Sprintf("remote: POST %s: %v (the server is unreachable; records stay in the spool and are re-sent)", s.base+path, err)}
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if err != nil {
		return &remoteError{status: resp.StatusCode, msg: fmt.Sprintf("remote: POST %s: reading the answer: %v", s.base+path, err)}
	}
	serverMsg := errorMessage(rb)

	switch code := resp.StatusCode; {
	case code == http.StatusOK || code == http.StatusUnprocessableEntity:
		var ir ingestResult
		if err := json.Unmarshal(rb, &ir); err != nil || len(ir.Results) != len(recs) {
			return &remoteError{status: code, msg: fmt.Sprintf("remote: POST %s: %d: unexpected answer for %d records: %.200q",
				s.base+path, code, len(recs), rb)}
		}
		for i, rr := range ir.Results {
			r := recs[i]
			if rr.Index != i {
				return &remoteError{status: code, msg: fmt.Sprintf("remote: POST %s: result %d has index %d", s.base+path, i, rr.Index)}
			}
			switch rr.Status {
			case "accepted", "duplicate":
				tally(res, r.kind, rr.Status == "duplicate")
			case "rejected":
				*rejected = append(*rejected, rejection{kind: r.kind, id: r.id, reason: rr.Error})
			default:
				return &remoteError{status: code, msg: fmt.Sprintf("remote: POST %s: unknown status %q for record %d", s.base+path, rr.Status, i)}
			}
		}
		return nil
	case code == http.StatusRequestEntityTooLarge:
		if len(recs) > 1 {
			h := len(recs) / 2
			if err := s.post(ctx, path, source, recs[:h], res, rejected); err != nil {
				return err
			}
			return s.post(ctx, path, source, recs[h:], res, rejected)
		}
		*rejected = append(*rejected, rejection{kind: recs[0].kind, id: recs[0].id, reason: "too large for the server: " + serverMsg})
		return nil
	case code == http.StatusBadRequest && !activitybiError(rb):
		// Not our server's answer (a proxy's page, or --remote naming
		// another site): it says nothing about the records, which stay in
		// the spool.
		return &remoteError{status: code, msg: fmt.Sprintf("remote: POST %s: 400 %s, but not from an activitybi server (is --remote the server's address, and does a proxy in between pass the request through?); records stay in the spool and are re-sent",
			s.base+path, serverMsg)}
	case code == http.StatusBadRequest:
		// The server refuses the request's data (an unknown ?source=, a
		// body it cannot read): the same request fails again, so let the
		// uploader isolate the records and quarantine them with the reason.
		for _, r := range recs {
			*rejected = append(*rejected, rejection{kind: r.kind, id: r.id, reason: "request refused (400): " + serverMsg})
		}
		return nil
	case code == http.StatusTooManyRequests:
		d := retryAfter(resp.Header.Get("Retry-After"), s.now())
		s.notBefore = s.now().Add(d)
		return &remoteError{status: code, retryAfter: d, msg: fmt.Sprintf(
			"remote: the server %s is busy (429 Too Many Requests); Retry-After %s: waiting before re-sending: %s", s.base, d, serverMsg)}
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		msg := fmt.Sprintf("remote: the server %s refuses the token (%d %s): %s; create a new one on the server with "+
			"`activitybi token create --customer NAME` and pass it with --token or $ACTIVITYBI_TOKEN; "+
			"events stay in the local spool until then", s.base, code, http.StatusText(code), serverMsg)
		s.log.Error(msg)
		return &remoteError{status: code, msg: msg}
	default:
		return &remoteError{status: code, msg: fmt.Sprintf("remote: POST %s: %d %s: %s (will retry)",
			s.base+path, code, http.StatusText(code), serverMsg)}
	}
}

func tally(res *warehouse.LoadResult, kind string, dup bool) {
	switch {
	case kind == KindEvent && dup:
		res.Duplicates++
	case kind == KindEvent:
		res.Inserted++
	case dup:
		res.InsightDuplicates++
	default:
		res.InsightsInserted++
	}
}

// errorMessage is the "error" of a JSON error body, or the body's start.
// activitybiError reports whether b is the JSON error body activitybi's
// server answers with ({"error": "..."}).
func activitybiError(b []byte) bool {
	var e struct {
		Error string `json:"error"`
	}
	return json.Unmarshal(b, &e) == nil && e.Error != ""
}

func errorMessage(b []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		return e.Error
	}
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	if s == "" {
		return "(no message)"
	}
	return s
}

// retryAfter parses a Retry-After value (seconds or an HTTP date), capped.
func retryAfter(v string, now time.Time) time.Duration {
	d := defaultRetryAfter
	if v = strings.TrimSpace(v); v != "" {
		if secs, err := strconv.Atoi(v); err == nil && secs >= 0 {
			d = time.Duration(secs) * time.Second
		} else if t, err := http.ParseTime(v); err == nil {
			d = t.Sub(now)
		}
	}
	return min(max(d, 0), maxRetryAfter)
}

// waitRetryAfter waits until the time a 429 named.
func (s *RemoteSink) waitRetryAfter(ctx context.Context) error {
	d := s.notBefore.Sub(s.now())
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// ---- Quarantine

// quarantineLine is one line of quarantine.ndjson.
type quarantineLine struct {
	Segment string    `json:"segment"`
	Offset  int64     `json:"offset"`
	Kind    string    `json:"kind"`
	Reason  string    `json:"reason"`
	At      time.Time `json:"at"`
	// Raw is the record as read when it is UTF-8 (it is JSON for records
	// the server rejected); RawBase64 otherwise.
	Raw       string `json:"raw,omitempty"`
	RawBase64 string `json:"raw_base64,omitempty"`
}

// quarantineLocked appends the records not quarantined before (by segment
// and offset) to quarantine.ndjson and fsyncs it.
func (s *RemoteSink) quarantineLocked(qs []warehouse.QuarantineRecord) (int, error) {
	path := filepath.Join(s.opts.StateDir, RemoteQuarantineFile)
	if s.qseen == nil {
		seen, err := readQuarantineKeys(path)
		if err != nil {
			return 0, fmt.Errorf("remote: read %s: %w", path, err)
		}
		s.qseen = seen
	}
	var buf bytes.Buffer
	var added []string
	for _, q := range qs {
		key := q.Segment + "\x00" + strconv.FormatInt(q.Offset, 10)
		if _, ok := s.qseen[key]; ok {
			continue
		}
		at := q.At
		if at.IsZero() {
			at = s.now().UTC()
		}
		l := quarantineLine{Segment: q.Segment, Offset: q.Offset, Kind: q.Kind, Reason: q.Reason, At: at}
		if utf8.Valid(q.Raw) {
			l.Raw = string(q.Raw)
		} else {
			l.RawBase64 = base64.StdEncoding.EncodeToString(q.Raw)
		}
		b, err := marshalLine(l)
		if err != nil {
			return 0, err
		}
		buf.Write(b)
		buf.WriteByte('\n')
		added = append(added, key)
	}
	if len(added) == 0 {
		return 0, nil
	}
	_, statErr := os.Stat(path)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, remoteFilePerm)
	if err != nil {
		return 0, fmt.Errorf("remote: open quarantine: %w", err)
	}
	data := buf.Bytes()
	// A torn last line (a crash mid-append) must not swallow the first new one.
	if fi, err := f.Stat(); err == nil && fi.Size() > 0 && !endsWithNewline(path, fi.Size()) {
		data = append([]byte{'\n'}, data...)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && errors.Is(statErr, os.ErrNotExist) {
		err = fsutil.SyncDir(s.opts.StateDir)
	}
	if err != nil {
		return 0, fmt.Errorf("remote: write quarantine: %w", err)
	}
	for _, k := range added {
		s.qseen[k] = struct{}{}
	}
	s.log.Warn("remote: records quarantined locally", "count", len(added), "file", path, "first_reason", qs[0].Reason)
	return len(added), nil
}

func endsWithNewline(path string, size int64) bool {
	f, err := os.Open(path)
	if err != nil {
		return true
	}
	defer f.Close()
	var b [1]byte
	if _, err := f.ReadAt(b[:], size-1); err != nil {
		return true
	}
	return b[0] == '\n'
}

// readQuarantineKeys returns the segment\x00offset of every complete line
// of the quarantine file.
func readQuarantineKeys(path string) (map[string]struct{}, error) {
	seen := map[string]struct{}{}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return seen, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 && line[len(line)-1] == '\n' {
			var l quarantineLine
			if json.Unmarshal(line, &l) == nil {
				seen[l.Segment+"\x00"+strconv.FormatInt(l.Offset, 10)] = struct{}{}
			}
		}
		if err == io.EOF {
			return seen, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// ---- Who the token is

// WhoAmI is the server's answer to GET /v1/whoami (server.WhoAmIResponse):
// the token's customer and id and, of the token ids asked about, those that
// are (or were: revoked, expired) tokens of that customer.
type WhoAmI struct {
	Customer     string   `json:"customer"`
	TokenID      string   `json:"token_id"`
	SameCustomer []string `json:"same_customer,omitempty"`
}

// ErrWhoAmIUnsupported is returned by WhoAmI when the server does not
// answer GET /v1/whoami: an activitybi server older than this edge (or
// something else at the URL).
var ErrWhoAmIUnsupported = errors.New("the server does not answer GET /v1/whoami (an activitybi server older than this edge?)")

// WhoAmI asks the server whose token this is and which of tokenIDs are
// tokens of the same customer. A refused token (401, 403) and an
// unreachable or failing server are *remoteError (retryable, the token
// never in the message); a server without the route wraps
// ErrWhoAmIUnsupported.
func (s *RemoteSink) WhoAmI(ctx context.Context, tokenIDs ...string) (WhoAmI, error) {
	target := s.base + "/v1/whoami"
	if len(tokenIDs) > 0 {
		target += "?" + url.Values{"token_id": tokenIDs}.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return WhoAmI{}, fmt.Errorf("remote: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+s.opts.Token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", s.opts.UserAgent)
	resp, err := s.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return WhoAmI{}, ctx.Err()
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return WhoAmI{}, &remoteError{msg: fmt.Sprintf("remote: GET %s/v1/whoami: %v (the server is unreachable)", s.base, err)}
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if err != nil {
		return WhoAmI{}, &remoteError{status: resp.StatusCode, msg: fmt.Sprintf("remote: GET %s/v1/whoami: reading the answer: %v", s.base, err)}
	}
	switch code := resp.StatusCode; {
	case code == http.StatusOK:
		var w WhoAmI
		if json.Unmarshal(rb, &w) != nil || w.Customer == "" {
			// A dashboard's page, say, answering every path.
			// Not quoted: a debugging service that echoes the request
			// would echo the token.
			return WhoAmI{}, fmt.Errorf("%w: 200 with %d bytes of %q, not its JSON", ErrWhoAmIUnsupported, len(rb), resp.Header.Get("Content-Type"))
		}
		return w, nil
	case code == http.StatusNotFound || code == http.StatusMethodNotAllowed:
		return WhoAmI{}, fmt.Errorf("%w: %d %s", ErrWhoAmIUnsupported, code, http.StatusText(code))
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return WhoAmI{}, &remoteError{status: code, msg: fmt.Sprintf("remote: the server %s refuses the token (%d %s): %s",
			s.base, code, http.StatusText(code), errorMessage(rb))}
	default:
		return WhoAmI{}, &remoteError{status: code, msg: fmt.Sprintf("remote: GET %s/v1/whoami: %d %s: %s (will retry)",
			s.base, code, http.StatusText(code), errorMessage(rb))}
	}
}
