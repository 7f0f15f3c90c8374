package warehouse

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/activitybi/activitybi/internal/event"
)

// The audit log: every data access (a query ticket, a result fetch,
// get_context, analyst SQL, a listing of the log itself) is one audit_log
// row. Rows are written by Load (Batch.Audit, spool records of kind audit):
// in the same transaction as the batch's offsets, stored once per audit_id
// (a batch loaded again adds nothing), customer_id NULL for an access
// across all customers. A batch without audit rows pays nothing for them.
// DuckDB: one INSERT ... SELECT unnest(...) ON CONFLICT DO NOTHING into the
// table keyed by audit_id (duckdb/load.go, insertAudit).
// Snowflake: as insights: a segment's audit records go through a Snowpipe
// Streaming channel into a landing table with the segment offset as the
// offset token, and the triggered task MERGEs them into audit_log on
// audit_id WHEN NOT MATCHED THEN INSERT.
//
// Reading it is an analyst's (or a security admin's) job: AuditLister runs
// one fixed statement with the filters bound, never spliced.

// Limits of an audit listing.
const (
	// DefaultAuditLimit is how many rows a listing returns when
	// AuditFilter.Limit is 0.
	DefaultAuditLimit = 100
	// MaxAuditLimit is the most rows one listing may return; a larger
	// Limit is refused (page with Until instead).
	MaxAuditLimit = 100_000
)

// AuditFilter selects audit_log rows. Every field is optional; the zero
// value lists the newest DefaultAuditLimit rows.
type AuditFilter struct {
	// Since and Until bound "at": Since <= at < Until; zero = unbounded.
	Since time.Time `json:"since,omitzero"`
	Until time.Time `json:"until,omitzero"`
	// Equality filters; "" = any. Customer never matches the analyst's
	// rows across all customers (their customer_id is NULL).
	Customer  string `json:"customer,omitempty"`
	Principal string `json:"principal,omitempty"`
	Action    string `json:"action,omitempty"`
	Outcome   string `json:"outcome,omitempty"`
	Target    string `json:"target,omitempty"`
	// Limit is the most rows to return, newest first; 0 =
	// DefaultAuditLimit, at most MaxAuditLimit.
	Limit int `json:"limit,omitempty"`
}

// Validate checks f and says what is wrong and what is accepted. Action and
// Outcome must be known values, so that a typo is an error rather than an
// empty listing.
func (f *AuditFilter) Validate() error {
	var errs []string
	if f.Limit < 0 || f.Limit > MaxAuditLimit {
		errs = append(errs, fmt.Sprintf("limit %d: must be between 1 and %d (0 = %d)", f.Limit, MaxAuditLimit, DefaultAuditLimit))
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		errs = append(errs, fmt.Sprintf("since %s is not before until %s", f.Since.UTC().Format(time.RFC3339Nano), f.Until.UTC().Format(time.RFC3339Nano)))
	}
	for _, s := range []struct{ name, v string }{
		{"customer", f.Customer}, {"principal", f.Principal}, {"action", f.Action},
		{"outcome", f.Outcome}, {"target", f.Target},
	} {
		// The rules of the stored values (event.ValidateAudit): a value
		// that breaks them cannot match a row.
		switch {
		case !utf8.ValidString(s.v):
			errs = append(errs, s.name+": is not valid UTF-8")
		case utf8.RuneCountInString(s.v) > event.MaxStringLen:
			errs = append(errs, fmt.Sprintf("%s: is %d characters; the limit is %d", s.name, utf8.RuneCountInString(s.v), event.MaxStringLen))
		case strings.ContainsFunc(s.v, func(r rune) bool { return r < 0x20 || r == 0x7f }):
			errs = append(errs, s.name+": contains control characters")
		}
	}
	if f.Action != "" && !event.ValidAuditAction(f.Action) {
		errs = append(errs, fmt.Sprintf("action %q: not a known action (known: %s)", clipFilter(f.Action), strings.Join(event.AuditActions(), ", ")))
	}
	if f.Outcome != "" && !event.ValidAuditOutcome(f.Outcome) {
		errs = append(errs, fmt.Sprintf("outcome %q: not one of %s", clipFilter(f.Outcome), strings.Join(event.AuditOutcomes(), ", ")))
	}
	if len(errs) > 0 {
		return fmt.Errorf("audit filter: %s", strings.Join(errs, "; "))
	}
	return nil
}

// EffectiveLimit is Limit with the default applied.
func (f *AuditFilter) EffectiveLimit() int {
	if f.Limit == 0 {
		return DefaultAuditLimit
	}
	return f.Limit
}

func clipFilter(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// AuditColumns are the columns of an audit listing, in order.
var AuditColumns = []string{"at", "principal", "customer_id", "action", "target", "rows", "bytes",
	"duration_ms", "outcome", "detail", "audit_id", "_source", "_received_at"}

// AuditLister lists audit_log rows. It is not part of Driver: only the
// core's admin API and `activitybi audit` read the log, through the driver
// that owns the file.
type AuditLister interface {
	// Audit returns the rows matching f, newest first (by at, then
	// audit_id), at most f.Limit (Table.Truncated says more matched), with
	// the columns AuditColumns. f is validated first; every value is bound.
	// DuckDB: the fixed statement of duckdb/audit.go through Query's
	// checked READ ONLY path, with bound parameters.
	// Snowflake: the same statement with bound parameters under the
	// analyst's SELECT-only role.
	Audit(ctx context.Context, f AuditFilter) (*Table, error)
}
