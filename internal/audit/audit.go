// Package audit writes the audit log: one record per data access (a query
// ticket, a result fetch, get_context, an analyst's SQL, a listing of the
// log itself) saying who read whose data, what, how much, how long it took
// and how it ended.
//
// A record travels like an event. The process that served the access (an
// edge answering get_context from its cache, the core, the CLI reading the
// warehouse file itself) appends it to its own spool as a record of kind
// "audit"; the uploader of the core loads it into audit_log exactly once, in
// the same transaction as its offsets. So a record is durable the moment
// Record returns, whether or not a core runs, and no process but the core
// ever opens the warehouse to write it.
//
// Reads that repeat at a high rate (get_context) go through Coalesce: the
// first of a run of identical successful reads is written at once, the rest
// are counted for DefaultCoalesceWindow and written as one summary record;
// refusals and errors are always written one by one.
//
// Who the principal and the customer are is always decided by the caller's
// transport (the configured identity, a bearer token, the admin token, the
// OS user on the core's socket), never by a tool's input.
package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/activitybi/activitybi/internal/event"
	"github.com/activitybi/activitybi/internal/telemetry"
	"github.com/activitybi/activitybi/internal/upload"
	"github.com/activitybi/activitybi/internal/warehouse"
)

// Appender takes encoded records: a spool writer (spool.Writer).
type Appender interface {
	Append(kind string, payload []byte) error
}

// Options configure a Log.
type Options struct {
	// Appender is the process's spool writer; required.
	Appender Appender
	// Source is the _source of records that name none (event.SourceCLI
	// for the CLI, event.SourceMCP for an edge, event.SourceAPI for the
	// core); required.
	Source string
	// Now is the clock; nil = time.Now.
	Now func() time.Time
	// Registry registers the metrics; nil = counted but not registered.
	Registry prometheus.Registerer
	// Logger receives a warning for every record that could not be
	// written; nil = discard.
	Logger *slog.Logger
	// CoalesceWindow is how long Coalesce counts further identical reads
	// after writing the first; 0 = DefaultCoalesceWindow, negative = never
	// coalesce (Coalesce writes every record, as Record does).
	CoalesceWindow time.Duration
}

// Log writes audit records. It is safe for concurrent use (as safe as its
// Appender; a spool.Writer is). A Log whose Coalesce was called must be
// closed before its Appender (Close writes the pending summaries).
//
// A nil *Log is not a no-op: Record on nil panics. Every caller that serves
// data must decide, visibly, what an access without an audit log means for
// it, rather than lose records to a forgotten option.
type Log struct {
	app     Appender
	source  string
	now     func() time.Time
	log     *slog.Logger
	records *prometheus.CounterVec
	fails   *prometheus.CounterVec
	cut     prometheus.Counter

	co coalescer // Coalesce's pending reads: coalesce.go
}

// New validates opts and returns a Log.
func New(opts Options) (*Log, error) {
	if opts.Appender == nil {
		return nil, errors.New("audit: Appender is required")
	}
	if !event.ValidSource(opts.Source) {
		return nil, fmt.Errorf("audit: Source %q is not a known source (known: %v)", opts.Source, event.Sources())
	}
	l := &Log{app: opts.Appender, source: opts.Source, now: opts.Now, log: telemetry.OrDiscard(opts.Logger)}
	if l.now == nil {
		l.now = time.Now
	}
	l.records = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "activitybi_audit_records_total",
		Help: "Audit records written to the spool, by action and outcome."}, []string{"action", "outcome"})
	l.fails = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "activitybi_audit_failures_total",
		Help: "Audit records that could not be written, by reason (invalid: the record broke a rule; append: the spool refused it, e.g. at backpressure)."},
		[]string{"reason"})
	l.cut = prometheus.NewCounter(prometheus.CounterOpts{Name: "activitybi_audit_detail_truncated_total",
		Help: "Audit records whose detail was cut at event.MaxAuditDetailBytes."})
	l.co.init(opts.CoalesceWindow)
	if opts.Registry != nil {
		for _, c := range []prometheus.Collector{l.records, l.fails, l.cut, l.co.coalesced, l.co.overflow} {
			if err := opts.Registry.Register(c); err != nil {
				return nil, fmt.Errorf("audit: register metrics: %w", err)
			}
		}
	}
	return l, nil
}

// Record completes r and appends it: AuditID a new ULID and At now when
// they are empty, Source the Log's when empty, ReceivedAt now; times in
// UTC, truncated to microseconds (the warehouse's precision). A detail
// longer than event.MaxAuditDetailBytes is cut and marked, never refused;
// so is a target that breaks the string rules (cleanTarget).
// It returns a *event.ValidationError when r breaks a rule (a caller's
// bug: an unknown action, no principal, no customer for a customer's
// access) and the spool's error when the append fails (at the backpressure
// limit, say); the record is then not written, and the caller decides
// whether the access may still be served. When Record returns nil the
// record is in the spool (acknowledged means written).
func (l *Log) Record(r event.Audit) error {
	now := l.now().UTC().Truncate(time.Microsecond)
	if r.AuditID == "" {
		r.AuditID = event.NewID(now)
	}
	if r.At.IsZero() {
		r.At = now
	}
	r.At = r.At.UTC().Truncate(time.Microsecond)
	r.ReceivedAt = now
	if r.Source == "" {
		r.Source = l.source
	}
	r.Target = cleanTarget(r.Target)
	if event.AuditDetailTruncated(r.Detail) {
		l.cut.Inc()
	}
	if err := event.ValidateNewAudit(&r, now); err != nil {
		l.fails.WithLabelValues("invalid").Inc()
		l.log.Error("audit: record refused (a bug in its caller)", "action", r.Action, "err", err)
		return err
	}
	b, err := event.MarshalAudit(&r)
	if err != nil {
		l.fails.WithLabelValues("invalid").Inc()
		return fmt.Errorf("audit: %w", err)
	}
	if err := l.app.Append(upload.KindAudit, b); err != nil {
		l.fails.WithLabelValues("append").Inc()
		l.log.Warn("audit: record not written", "action", r.Action, "principal", r.Principal, "err", err)
		return fmt.Errorf("audit: append: %w", err)
	}
	l.records.WithLabelValues(r.Action, r.Outcome).Inc()
	return nil
}

// cleanTarget returns target as a record holds it: invalid UTF-8 and
// control characters (C0, DEL and C1) replaced by U+FFFD, and clipped to
// event.MaxStringLen characters, the last of them "…". A target is often
// what the caller was given (a get_context scope, a ticket id as the model
// sent it), so it may break the rules for stored strings; the access
// happened all the same, and refusing the record would leave it
// unaudited.
func cleanTarget(target string) string {
	if len(target) <= event.MaxStringLen && printableASCII(target) {
		return target
	}
	clip := utf8.RuneCountInString(target) > event.MaxStringLen
	n := 0
	var b strings.Builder
	for _, r := range target { // invalid UTF-8 comes as U+FFFD
		if clip && n == event.MaxStringLen-1 {
			b.WriteRune('…')
			break
		}
		if r < 0x20 || r == 0x7f || event.IsC1(r) {
			r = utf8.RuneError
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// printableASCII reports whether s is only ASCII from space to tilde.
func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// StatementHashLen is the length, in hex digits, of StatementHash: 64 bits,
// enough to tell a person's statements apart and to group repeats.
const StatementHashLen = 16

// StatementHash is the target of an analyst's SQL: the first
// StatementHashLen hex digits of the SHA-256 of the statement as given.
func StatementHash(sql string) string {
	h := sha256.Sum256([]byte(sql))
	return hex.EncodeToString(h[:])[:StatementHashLen]
}

// SQLDetailChars is how much of a statement an audit record keeps in its
// detail, in characters: enough to recognise it, without copying literal
// values of a long statement into the log.
const SQLDetailChars = 200

// SQLDetail is the detail of an analyst's SQL: its first SQLDetailChars
// characters, with "..." when it was longer.
func SQLDetail(sql string) string {
	n := 0
	for i := range sql {
		if n == SQLDetailChars {
			return sql[:i] + "..."
		}
		n++
	}
	return sql
}

// Outcome classifies how a served access ended, from its error and the
// context it ran under: nil is ok, a refused statement
// (*warehouse.UnsafeSQLError) refused, a passed deadline timeout, a
// cancellation cancelled, anything else error.
func Outcome(ctx context.Context, err error) string {
	var ue *warehouse.UnsafeSQLError
	switch {
	case err == nil:
		return event.OutcomeOK
	case errors.As(err, &ue):
		return event.OutcomeRefused
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded):
		return event.OutcomeTimeout
	case errors.Is(err, context.Canceled) || errors.Is(ctx.Err(), context.Canceled):
		return event.OutcomeCancelled
	}
	return event.OutcomeError
}

// SQLRecord is the audit record of an analyst's statement q (action
// ran_sql, across all customers) that returned rows rows and bytes bytes
// (its result as JSON) in the time since start, or failed with err (whose
// message follows the statement in the detail).
func SQLRecord(ctx context.Context, principal, q string, rows, bytes int64, start time.Time, err error) event.Audit {
	detail := SQLDetail(q)
	if err != nil {
		detail += "\n-- " + err.Error()
	}
	return event.Audit{Principal: principal, Action: event.ActionRanSQL, Target: StatementHash(q),
		Rows: rows, Bytes: bytes, DurationMS: Since(start), Outcome: Outcome(ctx, err), Detail: detail}
}

// ListingTarget is the target of a listing of the audit log.
const ListingTarget = "audit_log"

// ListingRecord is the audit record of a listing of the audit log with the
// filters f (action listed_audit, the filters as JSON in the detail) that
// returned rows rows and bytes bytes in the time since start, or failed
// with err. Its customer is f's customer filter, so that customer's own log
// shows who read it, or "" (across all customers) without one; a listing
// whose filters are invalid is refused, its customer "" (the filter may be
// what was wrong).
func ListingRecord(ctx context.Context, principal string, f warehouse.AuditFilter, rows, bytes int64, start time.Time, err error) event.Audit {
	r := event.Audit{Principal: principal, Customer: f.Customer, Action: event.ActionListedAudit, Target: ListingTarget,
		Rows: rows, Bytes: bytes, DurationMS: Since(start), Outcome: Outcome(ctx, err)}
	if b, jerr := json.Marshal(f); jerr == nil {
		r.Detail = string(b)
	}
	if verr := f.Validate(); verr != nil {
		r.Customer, r.Outcome = "", event.OutcomeRefused
	}
	if err != nil {
		r.Detail += "\n-- " + err.Error()
	}
	return r
}

// AnalystPrincipal is the principal of an analyst on this machine:
// "analyst:" and the OS user's name (its uid when the name is unknown).
// It is used for `activitybi sql` run by the CLI itself and for requests on
// the core's socket, which only this user (or root) can reach.
func AnalystPrincipal() string {
	name := ""
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	if name == "" {
		name = os.Getenv("USER")
	}
	if name == "" || !utf8.ValidString(name) {
		name = "uid" + strconv.Itoa(os.Getuid())
	}
	return "analyst:" + name
}

// AdminPrincipal is the principal of a request authorised by the core's
// admin token (over TCP): "admin:" and the first 12 hex digits of the
// token's SHA-256, so the log tells cores apart without holding a secret.
func AdminPrincipal(token string) string {
	h := sha256.Sum256([]byte(token))
	return "admin:" + hex.EncodeToString(h[:6])
}

// Since returns the duration from start to now in whole milliseconds, for
// DurationMS.
func Since(start time.Time) int64 { return time.Since(start).Milliseconds() }
