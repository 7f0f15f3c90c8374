package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// An insight atom is one small fact Claude wants remembered — a metric of a
// subject with a value, e.g. subject "tool:Bash", metric "p95_latency_ms",
// value 412 — with the hash of the query it came from as provenance. It is a
// row of insight_atoms, not of claude_stream.

// Limits enforced on every insight; part of the product's contract and
// documented in docs/spool-format.md (record kind "insight").
const (
	// MaxInsightValueBytes is the largest object value, in bytes of
	// compact JSON: an insight is a small fact, not a document.
	MaxInsightValueBytes = 4 << 10
	// MaxInsightStringLen is the longest string value, in characters.
	MaxInsightStringLen = 4096
	// MaxInsightLineBytes bounds one encoded insight input: a 4096-character
	// string value written entirely as \u escapes, or an indented object,
	// plus the other fields.
	MaxInsightLineBytes = 64 << 10
	// MinProvenanceHashLen and MaxProvenanceHashLen bound a
	// provenance_query_hash in hex digits (64-bit to 512-bit hashes).
	MinProvenanceHashLen = 16
	MaxProvenanceHashLen = 128
)

// MetricPattern is the form every insight metric must match: lowercase,
// starting with a letter, e.g. p95_latency_ms, cost.usd, tokens:output.
const MetricPattern = `^[a-z][a-z0-9_.:-]*$`

// acceptedValues says what an insight value may be, for error messages.
const acceptedValues = "a finite number, a string of at most 4096 characters, true or false, " +
	"or a JSON object of at most 4 KiB (e.g. 412, \"rising\", true, {\"p50\":120,\"p95\":412})"

// Insight is one row of insight_atoms as it travels through the pipeline
// (the spool's "insight" record payload).
type Insight struct {
	AtomID              string          `json:"atom_id"`
	TS                  time.Time       `json:"ts"`
	Customer            string          `json:"customer_id"`
	Subject             string          `json:"subject"`
	Metric              string          `json:"metric"`
	Value               json.RawMessage `json:"value"`
	ProvenanceQueryHash string          `json:"provenance_query_hash,omitempty"`
	// Verified says provenance_query_hash was found among the customer's
	// query tickets when the insight was logged (log_insight with a query
	// engine). Insights without a hash, or from a path that cannot check
	// it (/v1/insights), are stored unverified.
	Verified   bool      `json:"_verified"`
	ReceivedAt time.Time `json:"_received_at"`
	Source     string    `json:"_source"`
}

// InsightInput is what a caller may send. There is no customer: an insight
// belongs to the identity of the connection it arrives on (Defaults.Customer).
type InsightInput struct {
	// AtomID is an optional idempotency key, kept as given; when empty a
	// ULID is generated.
	AtomID              string          `json:"atom_id,omitempty"`
	Subject             string          `json:"subject"`
	Metric              string          `json:"metric"`
	Value               json.RawMessage `json:"value"`
	ProvenanceQueryHash string          `json:"provenance_query_hash,omitempty"`
	TS                  *time.Time      `json:"ts,omitempty"`
}

// insightInputFields are the keys an insight input may carry.
var insightInputFields = []string{"atom_id", "ts", "subject", "metric", "value", "provenance_query_hash"}

// NormalizeInsight validates in and returns the insight to store: the
// customer is d.Customer, atom_id a generated ULID when none is given, ts
// now (UTC) when none is given, times truncated to microseconds (the
// warehouse's precision), value compacted, and Verified false. A missing
// d.Customer is the caller's configuration error, not the input's, and is
// returned as a plain error (not a *ValidationError).
func NormalizeInsight(in InsightInput, d Defaults) (Insight, error) {
	if d.Customer == "" {
		return Insight{}, errors.New("insight: no customer: the connection has no identity to store the insight under")
	}
	now := time.Now
	if d.Now != nil {
		now = d.Now
	}
	t := now().UTC()
	x := Insight{
		AtomID:              in.AtomID,
		Customer:            d.Customer,
		Subject:             in.Subject,
		Metric:              in.Metric,
		Value:               in.Value,
		ProvenanceQueryHash: in.ProvenanceQueryHash,
		ReceivedAt:          t.Truncate(time.Microsecond),
		Source:              d.Source,
	}
	if in.TS != nil {
		x.TS = in.TS.UTC().Truncate(time.Microsecond)
	} else {
		x.TS = x.ReceivedAt
	}
	if x.AtomID == "" {
		x.AtomID = NewID(x.TS)
	}
	if err := validateInsight(&x, t, checkNewString); err != nil {
		return Insight{}, err
	}
	return x, nil
}

// ValidateInsight checks a complete insight (for example one read back from
// the spool) with now as the clock for the future-timestamp check, and
// reports every problem at once as a *ValidationError. It rewrites x.Value
// in compact form, the form in which values are stored.
func ValidateInsight(x *Insight, now time.Time) error {
	return validateInsight(x, now, checkString)
}

// validateInsight is ValidateInsight with check as the rule on its
// identifiers: checkNewString for a new insight, checkString for a stored
// one.
func validateInsight(x *Insight, now time.Time, check func(*ValidationError, string, string)) error {
	ve := ValidationError{what: "insight"}
	if !validSources[x.Source] {
		ve.add("_source", "unknown source %q", x.Source)
	}
	if x.AtomID == "" {
		ve.add("atom_id", "is required")
	}
	check(&ve, "atom_id", x.AtomID)
	if x.Customer == "" {
		ve.add("customer_id", "is required")
	}
	checkString(&ve, "customer_id", x.Customer) // the token's or the configuration's: see validate
	checkSubject(&ve, x.Subject)
	switch {
	case x.Metric == "":
		ve.add("metric", "is required (a lowercase name such as p95_latency_ms)")
	case len(x.Metric) > MaxStringLen:
		ve.add("metric", "is %d characters; the limit is %d", len(x.Metric), MaxStringLen)
	case !validMetric(x.Metric):
		ve.add("metric", "%q must match %s (lowercase letters, digits and _ . : -, starting with a letter, e.g. p95_latency_ms)",
			clip(x.Metric), MetricPattern)
	}
	if v, err := compactValue(x.Value); err != nil {
		ve.add("value", "%v", err)
	} else {
		x.Value = v
	}
	if h := x.ProvenanceQueryHash; h != "" && !validHash(h) {
		ve.add("provenance_query_hash", "%q must be %d to %d lowercase hex digits, optionally after \"q_\" (the query_hash of the query the insight came from)",
			clip(h), MinProvenanceHashLen, MaxProvenanceHashLen)
	}
	checkTS(&ve, x.TS, now)
	return ve.errOrNil()
}

// checkSubject: required, at most MaxStringLen characters, one printable
// line (typical subjects: user, project:<name>, tool:Bash).
func checkSubject(ve *ValidationError, s string) {
	switch {
	case strings.TrimSpace(s) == "":
		ve.add("subject", "is required (what the insight is about, e.g. user, project:billing, tool:Bash)")
	case !utf8.ValidString(s):
		ve.add("subject", "is not valid UTF-8")
	default:
		if n := utf8.RuneCountInString(s); n > MaxStringLen {
			ve.add("subject", "is %d characters; the limit is %d", n, MaxStringLen)
		}
		if strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) || r == '\u2028' || r == '\u2029' }) {
			ve.add("subject", "contains control characters or line breaks; it must be one printable line")
		}
	}
}

// validMetric is MetricPattern without a regexp.
func validMetric(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

// validHash accepts lowercase hex, optionally prefixed "q_" as the query
// engine writes its hashes.
func validHash(s string) bool {
	s = strings.TrimPrefix(s, "q_")
	if len(s) < MinProvenanceHashLen || len(s) > MaxProvenanceHashLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// compactValue checks an insight value and returns it compacted.
func compactValue(raw json.RawMessage) (json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, errors.New("is required: " + acceptedValues)
	}
	if len(raw) > MaxInsightLineBytes {
		return nil, fmt.Errorf("is larger than %d bytes; accepted: %s", MaxInsightLineBytes, acceptedValues)
	}
	switch raw[0] {
	case 'n':
		if string(raw) == "null" {
			return nil, errors.New("must not be null; accepted: " + acceptedValues)
		}
	case '[':
		return nil, errors.New("must not be an array; accepted: " + acceptedValues +
			"; put a list inside an object, e.g. {\"items\":[1,2]}")
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, fmt.Errorf("is not valid JSON: %v", err)
	}
	c := buf.Bytes()
	if !utf8.Valid(c) {
		return nil, errors.New("is not valid UTF-8")
	}
	if i := loneSurrogate(c); i >= 0 {
		return nil, loneSurrogateErr(c, i)
	}
	switch c[0] {
	case '{':
		if len(c) > MaxInsightValueBytes {
			return nil, fmt.Errorf("is an object of %d bytes; the limit is %d (%d KiB)", len(c), MaxInsightValueBytes, MaxInsightValueBytes>>10)
		}
	case '"':
		var s string
		if err := json.Unmarshal(c, &s); err != nil {
			return nil, fmt.Errorf("is not a valid JSON string: %v", err)
		}
		if n := utf8.RuneCountInString(s); n > MaxInsightStringLen {
			return nil, fmt.Errorf("is a string of %d characters; the limit is %d", n, MaxInsightStringLen)
		}
	case 't', 'f':
		// true or false: json.Compact has checked the literal.
	default: // a number (json.Compact accepts nothing else here)
		f, err := strconv.ParseFloat(string(c), 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, fmt.Errorf("%s must be a finite number", clip(string(c)))
		}
	}
	return c, nil
}

// MarshalInsight encodes x as compact one-line JSON (no newline). HTML
// characters are not escaped, so value is stored byte for byte as accepted.
func MarshalInsight(x *Insight) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(x); err != nil {
		return nil, fmt.Errorf("encode insight: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// DecodeInsight parses an insight record (the spool's insight payload) and
// validates it against the clock of the moment it was accepted
// (_received_at). It is strict: a record with an unknown field, a wrong
// type, a missing column or a value that fails validation has drifted from
// the schema and must be quarantined by the caller, not loaded.
func DecodeInsight(b []byte) (Insight, error) {
	var x Insight
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&x); err != nil {
		return Insight{}, fmt.Errorf("decode insight: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Insight{}, errors.New("decode insight: trailing data after the object")
	}
	var missing []string
	for _, f := range []struct {
		name string
		ok   bool
	}{
		{"atom_id", x.AtomID != ""}, {"ts", !x.TS.IsZero()}, {"customer_id", x.Customer != ""},
		{"subject", x.Subject != ""}, {"metric", x.Metric != ""}, {"value", len(x.Value) > 0},
		{"_received_at", !x.ReceivedAt.IsZero()}, {"_source", x.Source != ""},
	} {
		if !f.ok {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return Insight{}, fmt.Errorf("decode insight: missing %s", strings.Join(missing, ", "))
	}
	if err := ValidateInsight(&x, x.ReceivedAt); err != nil {
		return Insight{}, err
	}
	return x, nil
}

// DecodeInsightInput parses one JSON object sent by a caller, rejecting
// unknown fields, fields the caller may not set and trailing data with
// messages that name the field.
func DecodeInsightInput(line []byte) (InsightInput, error) {
	var in InsightInput
	ve := ValidationError{what: "insight"}
	if len(bytes.TrimSpace(line)) == 0 {
		ve.add("line", "is empty")
		return in, &ve
	}
	if len(line) > MaxInsightLineBytes {
		ve.add("line", "is %d bytes; the limit is %d", len(line), MaxInsightLineBytes)
		return in, &ve
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(line, &keys); err != nil {
		ve.add("line", "is not a JSON object: %v", describeJSONErr(err))
		return in, &ve
	}
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		switch {
		case k == "customer" || k == "customer_id":
			ve.add(k, "cannot be set: an insight belongs to the customer of the connection's identity")
		case strings.HasPrefix(k, "_"):
			ve.add(k, "is maintained by the pipeline and cannot be set by a client")
		case !contains(insightInputFields, k):
			ve.add(k, "unknown field (allowed: %s)", strings.Join(insightInputFields, ", "))
		}
	}
	if len(ve.Errs) > 0 {
		return InsightInput{}, &ve
	}
	if err := strictDecode(line, &in, &ve); err != nil {
		return InsightInput{}, err
	}
	return in, nil
}
