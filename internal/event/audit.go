package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// An audit record says who accessed which data, when, how much and with
// what outcome: one row of audit_log. It is written by the process that
// served the access (an edge answering get_context from its own cache, the
// core running a ticket or an analyst's SQL, the CLI reading the warehouse
// file itself) to its spool as a record of kind "audit", so that it is
// durable the moment the access is answered, with or without a running
// core, and it reaches the warehouse exactly once through the uploader.

// Limits enforced on every audit record; part of the product's contract and
// documented in docs/spool-format.md (record kind "audit").
const (
	// MaxAuditDetailBytes bounds detail, in bytes of UTF-8 including the
	// truncation marker. A longer detail is cut (at a character boundary)
	// and marked rather than refused: an access must never go unaudited
	// because its description was long.
	MaxAuditDetailBytes = 4 << 10
	// MaxAuditRecordBytes bounds one encoded audit record read back from
	// the spool: the 255-character strings (each at most 6 bytes per
	// character escaped) and a 4 KiB detail written as \u escapes fit.
	MaxAuditRecordBytes = 64 << 10
)

// auditTruncatedFormat ends a truncated detail; %d is the detail's original
// length in bytes.
const auditTruncatedFormat = " …[truncated from %d bytes]"

// Audit actions: the known set, each a verb_noun in the past tense like the
// activity vocabulary. A record with another action is refused, so that a
// typo cannot hide an access from `activitybi audit --action`.
const (
	// ActionSubmittedQuery: a query ticket was asked for (accepted or
	// refused); target is the template name or the dataset's hash.
	ActionSubmittedQuery = "submitted_query"
	// ActionCompletedQuery: a ticket's query finished; rows, bytes and
	// duration are the run's.
	ActionCompletedQuery = "completed_query"
	// ActionCancelledQuery: a ticket was cancelled.
	ActionCancelledQuery = "cancelled_query"
	// ActionFetchedResult: a ticket's result was read.
	ActionFetchedResult = "fetched_result"
	// ActionGotContext: get_context served a customer's memory.
	ActionGotContext = "got_context"
	// ActionRenderedCard: a chart card was rendered from a result.
	ActionRenderedCard = "rendered_card"
	// ActionFetchedArtifact: an artifact (a card, a result file) was read.
	ActionFetchedArtifact = "fetched_artifact"
	// ActionRanSQL: an analyst ran SQL (`activitybi sql`); target is
	// HashStatement of the statement.
	ActionRanSQL = "ran_sql"
	// ActionListedAudit: someone read this log (`activitybi audit`).
	ActionListedAudit = "listed_audit"
)

// auditActions are the known actions; the value says whether the action is
// an analyst's, which may span all customers (customer_id empty).
var auditActions = map[string]bool{
	ActionSubmittedQuery: false, ActionCompletedQuery: false, ActionCancelledQuery: false,
	ActionFetchedResult: false, ActionGotContext: false, ActionRenderedCard: false,
	ActionFetchedArtifact: false, ActionRanSQL: true, ActionListedAudit: true,
}

// AuditActions lists the known audit actions, sorted.
func AuditActions() []string {
	return []string{ActionCancelledQuery, ActionCompletedQuery, ActionFetchedArtifact, ActionFetchedResult,
		ActionGotContext, ActionListedAudit, ActionRanSQL, ActionRenderedCard, ActionSubmittedQuery}
}

// ValidAuditAction reports whether s is a known audit action.
func ValidAuditAction(s string) bool { _, ok := auditActions[s]; return ok }

// Audit outcomes.
const (
	OutcomeOK        = "ok"        // served
	OutcomeRefused   = "refused"   // not served: unsafe, unauthorised, over a budget or a limit
	OutcomeError     = "error"     // failed while serving
	OutcomeNotFound  = "not_found" // nothing by that name (or not this customer's)
	OutcomeTimeout   = "timeout"   // interrupted by its deadline
	OutcomeCancelled = "cancelled" // stopped by the caller
)

var auditOutcomes = map[string]bool{
	OutcomeOK: true, OutcomeRefused: true, OutcomeError: true, OutcomeNotFound: true,
	OutcomeTimeout: true, OutcomeCancelled: true,
}

// AuditOutcomes lists the known outcomes.
func AuditOutcomes() []string {
	return []string{OutcomeOK, OutcomeRefused, OutcomeError, OutcomeNotFound, OutcomeTimeout, OutcomeCancelled}
}

// ValidAuditOutcome reports whether s is a known outcome.
func ValidAuditOutcome(s string) bool { return auditOutcomes[s] }

// Audit is one row of audit_log as it travels through the pipeline (the
// spool's "audit" record payload).
type Audit struct {
	// AuditID is a ULID given when the record is made.
	AuditID string `json:"audit_id"`
	// At is when the access happened (UTC, microseconds).
	At time.Time `json:"at"`
	// Principal is who accessed: "analyst:<OS user>", "admin:<token id>",
	// or the bearer token's id, always from the transport.
	Principal string `json:"principal"`
	// Customer is whose data was read; "" only for an analyst's access
	// across all customers (ran_sql, listed_audit), stored as NULL.
	Customer string `json:"customer_id,omitempty"`
	Action   string `json:"action"`
	// Target is what was read: a template name, a statement's hash, a
	// ticket or artifact id.
	Target     string `json:"target,omitempty"`
	Rows       int64  `json:"rows"`
	Bytes      int64  `json:"bytes"`
	DurationMS int64  `json:"duration_ms"`
	Outcome    string `json:"outcome"`
	// Detail is free text for a person (the statement's start, an error);
	// at most MaxAuditDetailBytes, truncated with a marker beyond.
	Detail string `json:"detail,omitempty"`
	// ReceivedAt is when the spool writer accepted the record.
	ReceivedAt time.Time `json:"_received_at"`
	Source     string    `json:"_source"`
}

// ValidateAudit checks a complete audit record with now as the clock for
// the future-timestamp check and reports every problem at once as a
// *ValidationError. It rewrites Detail into the form that is stored: valid
// UTF-8 (bad bytes and control characters other than tab and line breaks
// become U+FFFD) of at most MaxAuditDetailBytes, a longer one cut and
// marked; AuditDetailTruncated tells a caller in advance whether that will
// happen.
func ValidateAudit(a *Audit, now time.Time) error {
	return validateAudit(a, now, checkString)
}

// ValidateNewAudit is ValidateAudit for a record being written (audit.Log
// does it): its identifiers (audit_id, principal, customer_id, target)
// must not hold C1 control characters either. DecodeAudit keeps
// ValidateAudit's rules, so that records an earlier version wrote still
// load.
func ValidateNewAudit(a *Audit, now time.Time) error {
	return validateAudit(a, now, checkNewString)
}

func validateAudit(a *Audit, now time.Time, check func(*ValidationError, string, string)) error {
	ve := ValidationError{what: "audit record"}
	if !validSources[a.Source] {
		ve.add("_source", "unknown source %q (known: %s)", clip(a.Source), strings.Join(Sources(), ", "))
	}
	if a.AuditID == "" {
		ve.add("audit_id", "is required")
	}
	check(&ve, "audit_id", a.AuditID)
	if a.Principal == "" {
		ve.add("principal", "is required (who accessed the data, e.g. analyst:alice)")
	}
	check(&ve, "principal", a.Principal)
	checkString(&ve, "customer_id", a.Customer) // the token's or the configuration's: see validate
	analyst, known := auditActions[a.Action]
	switch {
	case a.Action == "":
		ve.add("action", "is required (one of %s)", strings.Join(AuditActions(), ", "))
	case len(a.Action) > MaxStringLen:
		ve.add("action", "is %d characters; the limit is %d", len(a.Action), MaxStringLen)
	case !validActivity(a.Action):
		ve.add("action", "%q is not verb_noun (%s); known actions: %s", clip(a.Action), ActivityPattern, strings.Join(AuditActions(), ", "))
	case !known:
		ve.add("action", "%q is not a known action (known: %s)", clip(a.Action), strings.Join(AuditActions(), ", "))
	}
	if known && !analyst && a.Customer == "" {
		ve.add("customer_id", "is required for action %s (only an analyst's %s or %s may span all customers)",
			a.Action, ActionRanSQL, ActionListedAudit)
	}
	check(&ve, "target", a.Target)
	for _, f := range []struct {
		name string
		v    int64
	}{{"rows", a.Rows}, {"bytes", a.Bytes}, {"duration_ms", a.DurationMS}} {
		if f.v < 0 {
			ve.add(f.name, "is %d; it must not be negative", f.v)
		}
	}
	switch {
	case a.Outcome == "":
		ve.add("outcome", "is required (one of %s)", strings.Join(AuditOutcomes(), ", "))
	case !auditOutcomes[a.Outcome]:
		ve.add("outcome", "%q is not one of %s", clip(a.Outcome), strings.Join(AuditOutcomes(), ", "))
	}
	// checkTS's rules, under this record's field name.
	if a.At.Before(minTS) {
		ve.add("at", "%s is before 1970-01-01", a.At.Format(time.RFC3339Nano))
	} else if a.At.After(now.Add(MaxFutureSkew)) {
		ve.add("at", "%s is more than %s in the future (now %s); check the clock or the time zone",
			a.At.Format(time.RFC3339Nano), MaxFutureSkew, now.Format(time.RFC3339))
	}
	a.Detail = cleanDetail(a.Detail)
	return ve.errOrNil()
}

// AuditDetailTruncated reports whether ValidateAudit will cut detail (the
// caller may count it: every limit is counted when hit).
func AuditDetailTruncated(detail string) bool {
	return len(sanitizeDetail(detail)) > MaxAuditDetailBytes
}

// cleanDetail returns s as stored: valid UTF-8 without control characters
// other than \t \n \r (C1 included), at most MaxAuditDetailBytes. It is
// idempotent.
func cleanDetail(s string) string {
	c := sanitizeDetail(s)
	if len(c) <= MaxAuditDetailBytes {
		return c
	}
	marker := fmt.Sprintf(auditTruncatedFormat, len(s))
	cut := MaxAuditDetailBytes - len(marker)
	for cut > 0 && !utf8.RuneStart(c[cut]) {
		cut--
	}
	return c[:cut] + marker
}

// sanitizeDetail replaces invalid UTF-8 and control characters (C0 other
// than \t \n \r, DEL, C1) with U+FFFD.
func sanitizeDetail(s string) string {
	if detailClean(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0x7f || IsC1(r) {
			r = utf8.RuneError
		}
		b.WriteRune(r)
		i += size
	}
	return b.String()
}

// detailClean reports whether s needs no rewriting by cleanDetail (length
// aside).
func detailClean(s string) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 && c != '\t' && c != '\n' && c != '\r' || c == 0x7f {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || IsC1(r) {
			return false
		}
		i += size
	}
	return true
}

// MarshalAudit encodes a as compact one-line JSON (no newline), byte for
// byte what encoding/json writes with SetEscapeHTML(false) (TestMarshalAudit
// and FuzzAudit hold the two equal), without reflection.
func MarshalAudit(a *Audit) ([]byte, error) {
	return AppendMarshalAudit(make([]byte, 0, 256+len(a.Principal)+len(a.Customer)+len(a.Target)+len(a.Detail)), a)
}

// AppendMarshalAudit appends MarshalAudit's encoding of a to dst. On error
// it returns dst at its original length.
func AppendMarshalAudit(dst []byte, a *Audit) ([]byte, error) {
	orig := len(dst)
	b := append(dst, `{"audit_id":`...)
	b = appendJSONString(b, a.AuditID)
	b = append(b, `,"at":`...)
	b, err := appendJSONTime(b, a.At)
	if err != nil {
		return dst[:orig], auditEncodeErr(err)
	}
	b = append(b, `,"principal":`...)
	b = appendJSONString(b, a.Principal)
	if a.Customer != "" {
		b = append(b, `,"customer_id":`...)
		b = appendJSONString(b, a.Customer)
	}
	b = append(b, `,"action":`...)
	b = appendJSONString(b, a.Action)
	if a.Target != "" {
		b = append(b, `,"target":`...)
		b = appendJSONString(b, a.Target)
	}
	b = append(b, `,"rows":`...)
	b = strconv.AppendInt(b, a.Rows, 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, a.Bytes, 10)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendInt(b, a.DurationMS, 10)
	b = append(b, `,"outcome":`...)
	b = appendJSONString(b, a.Outcome)
	if a.Detail != "" {
		b = append(b, `,"detail":`...)
		b = appendJSONString(b, a.Detail)
	}
	b = append(b, `,"_received_at":`...)
	if b, err = appendJSONTime(b, a.ReceivedAt); err != nil {
		return dst[:orig], auditEncodeErr(err)
	}
	b = append(b, `,"_source":`...)
	b = appendJSONString(b, a.Source)
	return append(b, '}'), nil
}

// auditEncodeErr names the record in appendJSONTime's error ("encode event:
// ..." otherwise).
func auditEncodeErr(err error) error {
	return fmt.Errorf("encode audit record: %w", errors.Unwrap(err))
}

// DecodeAudit parses an audit record (the spool's audit payload) and
// validates it against the clock of the moment it was accepted
// (_received_at). It is strict: an unknown field, a wrong type, a missing
// column or a failed rule means the record drifted from the schema and must
// be quarantined by the caller, not loaded.
func DecodeAudit(b []byte) (Audit, error) {
	var a Audit
	if len(b) > MaxAuditRecordBytes {
		return Audit{}, fmt.Errorf("decode audit record: %d bytes; the limit is %d", len(b), MaxAuditRecordBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		return Audit{}, fmt.Errorf("decode audit record: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Audit{}, errors.New("decode audit record: trailing data after the object")
	}
	var missing []string
	for _, f := range []struct {
		name string
		ok   bool
	}{
		{"audit_id", a.AuditID != ""}, {"at", !a.At.IsZero()}, {"principal", a.Principal != ""},
		{"action", a.Action != ""}, {"outcome", a.Outcome != ""},
		{"_received_at", !a.ReceivedAt.IsZero()}, {"_source", a.Source != ""},
	} {
		if !f.ok {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return Audit{}, fmt.Errorf("decode audit record: missing %s", strings.Join(missing, ", "))
	}
	if err := ValidateAudit(&a, a.ReceivedAt); err != nil {
		return Audit{}, err
	}
	return a, nil
}
