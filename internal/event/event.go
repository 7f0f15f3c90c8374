// Package event defines the ActivitySchema v2.0 activity record that flows
// through activitybi: its columns, the validation every accepted event passes,
// identity (generated, time-ordered activity ids and caller-given idempotency
// keys) and the compact JSON codec used on the wire and in the spool.
//
// The package is a leaf: it imports only the standard library and the ULID
// generator, so every other package (and every fuzz target) can use it cheaply.
package event

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/oklog/ulid/v2"
)

// Limits enforced on every event. They are part of the product's contract and
// are documented in docs/architecture.md.
const (
	// MaxStringLen is the longest string column value, in characters
	// (ActivitySchema: strings are typically <= 255 characters).
	MaxStringLen = 255
	// MaxFeatureBytes is the largest feature_json object, in bytes of compact JSON.
	MaxFeatureBytes = 64 << 10
	// MaxFutureSkew is how far in the future a timestamp may be (clock skew).
	MaxFutureSkew = 5 * time.Minute
	// MaxLineBytes bounds one encoded input line (an ingest line, a record
	// of POST /v1/events) and the feature object as sent, before it is
	// compacted. It bounds memory, not the event: the rule on features is
	// MaxFeatureBytes once compacted, and a line that holds a 64 KiB
	// object written with spaces after its separators (or indented on one
	// line), with the other columns at their longest and escaped, is well
	// under it.
	MaxLineBytes = 1 << 20
)

// Sources: where an event entered the pipeline (the _source column).
const (
	SourceMCP    = "mcp"
	SourceHook   = "hook"
	SourceImport = "import"
	SourceOTLP   = "otlp"
	SourceProxy  = "proxy"
	SourceAPI    = "api"
	SourceCLI    = "cli"
)

var validSources = map[string]bool{
	SourceMCP: true, SourceHook: true, SourceImport: true, SourceOTLP: true,
	SourceProxy: true, SourceAPI: true, SourceCLI: true,
}

// ValidSource reports whether s is a known _source value.
func ValidSource(s string) bool { return validSources[s] }

// Sources lists the known _source values.
func Sources() []string {
	return []string{SourceMCP, SourceHook, SourceImport, SourceOTLP, SourceProxy, SourceAPI, SourceCLI}
}

// ActivityPattern is the verb_noun form every activity name must match.
const ActivityPattern = `^[a-z][a-z0-9]*(_[a-z0-9]+)+$`

// minTS rejects obviously broken timestamps (zero values, seconds read as
// milliseconds the wrong way round) while allowing any real history.
var minTS = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)

// Event is one row of the claude_stream table as it travels through the
// pipeline. The occurrence columns (_activity_occurrence,
// _activity_repeated_at) are computed by the warehouse on load and are
// therefore not part of the record.
type Event struct {
	ActivityID          string          `json:"activity_id"`
	TS                  time.Time       `json:"ts"`
	Customer            string          `json:"customer,omitempty"`
	Activity            string          `json:"activity"`
	AnonymousCustomerID string          `json:"anonymous_customer_id,omitempty"`
	Features            json.RawMessage `json:"feature_json"`
	RevenueImpact       *float64        `json:"revenue_impact,omitempty"`
	Link                string          `json:"link,omitempty"`
	ReceivedAt          time.Time       `json:"_received_at"`
	Source              string          `json:"_source"`
}

// Input is what a caller may send: the ActivitySchema columns and nothing
// else. Every field is optional here; Normalize decides what is required.
type Input struct {
	ActivityID          string          `json:"activity_id,omitempty"`
	TS                  *time.Time      `json:"ts,omitempty"`
	Customer            string          `json:"customer,omitempty"`
	Activity            string          `json:"activity"`
	AnonymousCustomerID string          `json:"anonymous_customer_id,omitempty"`
	Features            json.RawMessage `json:"feature_json,omitempty"`
	RevenueImpact       *float64        `json:"revenue_impact,omitempty"`
	Link                string          `json:"link,omitempty"`
}

// inputFields are the keys an input object may carry, in column order.
var inputFields = []string{"activity_id", "ts", "customer", "activity",
	"anonymous_customer_id", "feature_json", "revenue_impact", "link"}

// pipelineFields are columns clients cannot set; naming them gives a precise error.
var pipelineFields = map[string]bool{
	"_activity_occurrence": true, "_activity_repeated_at": true,
	"_received_at": true, "_source": true,
	"activity_occurrence": true, "activity_repeated_at": true,
}

// FieldError says what is wrong with one field.
type FieldError struct {
	Field string
	Msg   string
}

func (e FieldError) Error() string { return e.Field + ": " + e.Msg }

// ValidationError lists every problem found in one event (or insight), so a
// person can fix them all at once. It is never retryable: the same input
// fails again.
type ValidationError struct {
	Errs []FieldError
	// what names the record in the message; "" means "event".
	what string
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Errs))
	for i, fe := range e.Errs {
		parts[i] = fe.Error()
	}
	what := e.what
	if what == "" {
		what = "event"
	}
	return "invalid " + what + ": " + strings.Join(parts, "; ")
}

func (e *ValidationError) add(field, format string, args ...any) {
	e.Errs = append(e.Errs, FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
}

// errOrNil returns a copy of e, if it holds errors, so that the caller's e
// can live on the stack: a valid event costs no allocation here.
func (e *ValidationError) errOrNil() error {
	if len(e.Errs) == 0 {
		return nil
	}
	c := *e
	return &c
}

// IsValidation reports whether err is a validation error (bad input that will
// fail again unchanged), as opposed to an I/O or capacity error.
func IsValidation(err error) bool {
	var ve *ValidationError
	return errors.As(err, &ve)
}

// Defaults fill what the input leaves out.
type Defaults struct {
	// Customer is used when the input names neither customer nor
	// anonymous_customer_id (the configured identity).
	Customer string
	// Source is the _source column; required.
	Source string
	// Now is the clock; zero means time.Now.
	Now func() time.Time
}

// Normalize validates in and returns the event to store, filling defaults:
// a generated time-ordered activity_id, ts = now (UTC), the default customer.
// Times are truncated to microseconds, the warehouse's precision, so that an
// event reads back exactly as it was written.
func Normalize(in Input, d Defaults) (Event, error) {
	now := time.Now
	if d.Now != nil {
		now = d.Now
	}
	t := now().UTC()
	var ve ValidationError
	e := Event{
		ActivityID:          in.ActivityID,
		Customer:            in.Customer,
		Activity:            in.Activity,
		AnonymousCustomerID: in.AnonymousCustomerID,
		RevenueImpact:       in.RevenueImpact,
		Link:                in.Link,
		ReceivedAt:          t.Truncate(time.Microsecond),
		Source:              d.Source,
	}
	if in.TS != nil {
		e.TS = in.TS.UTC().Truncate(time.Microsecond)
	} else {
		e.TS = e.ReceivedAt
	}
	if e.Customer == "" && e.AnonymousCustomerID == "" {
		e.Customer = d.Customer
	}
	if !validSources[e.Source] {
		ve.add("_source", "unknown source %q", e.Source)
	}
	if e.ActivityID == "" {
		e.ActivityID = NewID(e.TS)
	}
	if len(in.Features) == 0 || string(in.Features) == "null" {
		e.Features = json.RawMessage("{}")
	} else {
		e.Features = in.Features
	}
	validate(&e, t, &ve, true)
	if err := ve.errOrNil(); err != nil {
		return Event{}, err
	}
	return e, nil
}

// Validate checks a complete event (for example one read back from the
// spool) against the same rules Normalize applies, with now as the clock for
// the future-timestamp check.
func Validate(e *Event, now time.Time) error {
	var ve ValidationError
	if !validSources[e.Source] {
		ve.add("_source", "unknown source %q", e.Source)
	}
	if e.ActivityID == "" {
		ve.add("activity_id", "is required")
	}
	validate(e, now, &ve, false)
	return ve.errOrNil()
}

// validActivity is ActivityPattern without a regexp (it runs once per event
// on the upload path).
func validActivity(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	words, wordLen := 1, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			wordLen++
		case c == '_':
			if wordLen == 0 {
				return false
			}
			words, wordLen = words+1, 0
		default:
			return false
		}
	}
	return words >= 2 && wordLen > 0
}

// validate checks e. With compact (input from callers) it applies the
// rules for new records and rewrites feature_json in compact form;
// without, the rules for stored records, which were compacted when
// accepted.
func validate(e *Event, now time.Time, ve *ValidationError, compact bool) {
	switch {
	case e.Activity == "":
		ve.add("activity", "is required (a verb_noun name such as called_tool)")
	case !validActivity(e.Activity):
		ve.add("activity", "%q is not verb_noun: it must match %s (lowercase letters and digits, words joined by _, e.g. called_tool)", clip(e.Activity), ActivityPattern)
	case len(e.Activity) > MaxStringLen:
		ve.add("activity", "is %d characters; the limit is %d", len(e.Activity), MaxStringLen)
	}
	check := checkString
	if compact { // input from a caller: the rules for new records
		check = checkNewString
	}
	check(ve, "activity_id", e.ActivityID)
	// The customer is checked by the older rules (no C1 rule): on every
	// surface but log and ingest it is not the caller's input but the
	// token's or the configuration's, and those refuse C1 where customers
	// are named (token create, the config file); a token made before that
	// rule must not have every one of its records refused.
	checkString(ve, "customer", e.Customer)
	check(ve, "anonymous_customer_id", e.AnonymousCustomerID)
	if e.Customer == "" && e.AnonymousCustomerID == "" {
		ve.add("customer", "is required unless anonymous_customer_id is set")
	}
	checkTS(ve, e.TS, now)
	if e.RevenueImpact != nil && (math.IsNaN(*e.RevenueImpact) || math.IsInf(*e.RevenueImpact, 0)) {
		ve.add("revenue_impact", "must be a finite number")
	}
	if e.Link != "" {
		check(ve, "link", e.Link)
		if u, err := url.Parse(e.Link); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
			ve.add("link", "%q is not an http(s) URL", clip(e.Link))
		}
	}
	if compact {
		f, err := compactObject(e.Features)
		if err != nil {
			ve.add("feature_json", "%v", err)
		} else {
			e.Features = f
		}
	} else if err := checkObject(e.Features); err != nil {
		ve.add("feature_json", "%v", err)
	}
}

// checkTS applies the timestamp rules shared by events and insights.
func checkTS(ve *ValidationError, ts, now time.Time) {
	if ts.Before(minTS) {
		ve.add("ts", "%s is before 1970-01-01", ts.Format(time.RFC3339Nano))
	} else if ts.After(now.Add(MaxFutureSkew)) {
		ve.add("ts", "%s is more than %s in the future (now %s); check the clock or the time zone",
			ts.Format(time.RFC3339Nano), MaxFutureSkew, now.Format(time.RFC3339))
	}
}

// checkObject is compactObject's check without the rewrite.
func checkObject(raw json.RawMessage) error {
	if len(raw) == 0 || raw[0] != '{' {
		return errors.New("must be a JSON object, e.g. {\"tool\":\"search\"}")
	}
	if len(raw) > MaxFeatureBytes {
		return fmt.Errorf("is %d bytes; the limit is %d (%d KiB)", len(raw), MaxFeatureBytes, MaxFeatureBytes>>10)
	}
	if !isCompactJSON(raw) && !json.Valid(raw) {
		return errors.New("is not valid JSON")
	}
	if i := loneSurrogate(raw); i >= 0 {
		return loneSurrogateErr(raw, i)
	}
	return nil
}

// checkString applies the string rules to a stored record: valid UTF-8,
// at most MaxStringLen characters, no C0 control characters or DEL.
func checkString(ve *ValidationError, field, s string) { checkStr(ve, field, s, false) }

// checkNewString is checkString for a record being accepted: no C1
// control characters (U+0080 to U+009F) either. They are refused only on
// intake, so that records an earlier version accepted still load from the
// spool (the uploader checks them with checkString). In a terminal, C1
// controls are escapes (U+009B is CSI); in an identifier they are
// usually text decoded with the wrong character set (Windows-1252 read as
// Latin-1).
func checkNewString(ve *ValidationError, field, s string) { checkStr(ve, field, s, true) }

// IsC1 reports whether r is a C1 control character, U+0080 to U+009F.
func IsC1(r rune) bool { return r >= 0x80 && r <= 0x9f }

func checkStr(ve *ValidationError, field, s string, c1 bool) {
	if s == "" {
		return
	}
	if printableASCII(s) {
		// The usual case, in one pass: valid UTF-8, one character per
		// byte, no control characters.
		if len(s) > MaxStringLen {
			ve.add(field, "is %d characters; the limit is %d", len(s), MaxStringLen)
		}
		return
	}
	if !utf8.ValidString(s) {
		ve.add(field, "is not valid UTF-8")
		return
	}
	if n := utf8.RuneCountInString(s); n > MaxStringLen {
		ve.add(field, "is %d characters; the limit is %d", n, MaxStringLen)
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		ve.add(field, "contains control characters")
		return
	}
	if !c1 {
		return // a stored record: no second scan
	}
	if i := strings.IndexFunc(s, IsC1); i >= 0 {
		r, _ := utf8.DecodeRuneInString(s[i:])
		ve.add(field, "contains control characters (U+%04X, a C1 control; text decoded with the wrong character set?)", r)
	}
}

// printableASCII reports whether s is only ASCII from space to tilde.
func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			return false
		}
	}
	return true
}

// compactObject checks that raw is one JSON object within MaxFeatureBytes and
// returns it compacted (no insignificant whitespace, hence no newlines).
func compactObject(raw json.RawMessage) (json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil, errors.New("must be a JSON object, e.g. {\"tool\":\"search\"}")
	}
	if len(raw) > MaxLineBytes {
		return nil, fmt.Errorf("is %d bytes as sent; the limit is %d bytes (%d KiB) once compacted, and %d bytes (%d MiB) as sent",
			len(raw), MaxFeatureBytes, MaxFeatureBytes>>10, MaxLineBytes, MaxLineBytes>>20)
	}
	var out []byte
	if isCompactJSON(raw) {
		// The usual case: json.Compact would only copy it. The copy keeps
		// the event from sharing the caller's buffer, as before.
		out = append([]byte(nil), raw...)
	} else {
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err != nil {
			return nil, fmt.Errorf("is not valid JSON: %v", err)
		}
		out = buf.Bytes()
	}
	if len(out) > MaxFeatureBytes {
		return nil, fmt.Errorf("is %d bytes; the limit is %d (%d KiB)", len(out), MaxFeatureBytes, MaxFeatureBytes>>10)
	}
	if !utf8.Valid(out) {
		return nil, errors.New("is not valid UTF-8")
	}
	if i := loneSurrogate(out); i >= 0 {
		return nil, loneSurrogateErr(out, i)
	}
	return out, nil
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

var (
	idMu      sync.Mutex
	idEntropy = ulid.Monotonic(rand.Reader, 0)
)

// NewID returns a new ULID for time t: 26 characters, lexically ordered by
// time; within one process, ids for the same millisecond increase as long as
// no id for another millisecond is made in between.
func NewID(t time.Time) string {
	idMu.Lock()
	defer idMu.Unlock()
	ms := ulid.Timestamp(t)
	if ms > ulid.MaxTime() {
		ms = ulid.MaxTime()
	}
	id, err := ulid.New(ms, idEntropy)
	if err != nil {
		// Monotonic entropy overflows only after 2^80 ids in one
		// millisecond; fall back to fresh entropy.
		id = ulid.MustNew(ms, rand.Reader)
	}
	return id.String()
}

// LineTooLong is the message for an input line of n bytes, over
// MaxLineBytes: it names both limits, since the one a person usually meets
// is the features'.
func LineTooLong(n int) string {
	return fmt.Sprintf("is %d bytes; the limit for a line is %d bytes (%d MiB), and feature_json may be at most %d bytes (%d KiB) once compacted",
		n, MaxLineBytes, MaxLineBytes>>20, MaxFeatureBytes, MaxFeatureBytes>>10)
}

// DecodeInput parses one JSON object sent by a caller, rejecting unknown
// fields and trailing data with messages that name the field.
func DecodeInput(line []byte) (Input, error) {
	if len(bytes.TrimSpace(line)) == 0 {
		return Input{}, &ValidationError{Errs: []FieldError{{Field: "line", Msg: "is empty"}}}
	}
	if len(line) > MaxLineBytes {
		return Input{}, &ValidationError{Errs: []FieldError{{Field: "line", Msg: LineTooLong(len(line))}}}
	}
	if in, ok := decodeInputFast(line); ok {
		return in, nil
	}
	return decodeInputSlow(line)
}

// decodeInputSlow is DecodeInput with encoding/json, for the precise
// errors. It is a function of its own so that its Input, which escapes
// into the decoder, costs an allocation only here.
func decodeInputSlow(line []byte) (Input, error) {
	var in Input
	if err := strictUnmarshal(line, &in); err != nil {
		return Input{}, err
	}
	return in, nil
}

// decodeInputFast decodes the common shape of an input line with the
// reflection-free record decoder. It returns false for anything that decoder
// refuses (escapes, nulls other than revenue_impact's, unknown or repeated
// keys, odd numbers, trailing data) and for the pipeline's columns, which
// the fast decoder knows but clients may not set: strictUnmarshal then
// decides, with its precise messages. FuzzDecodeInputFast holds the two
// equal on everything this accepts.
func decodeInputFast(line []byte) (Input, bool) {
	var e Event
	seen, ok := decodeFastSeen(line, &e)
	if !ok || seen&(seenReceived|seenSource) != 0 {
		return Input{}, false
	}
	in := Input{
		ActivityID:          e.ActivityID,
		Customer:            e.Customer,
		Activity:            e.Activity,
		AnonymousCustomerID: e.AnonymousCustomerID,
		Features:            e.Features,
		RevenueImpact:       e.RevenueImpact,
		Link:                e.Link,
	}
	if seen&seenTS != 0 {
		ts := e.TS
		in.TS = &ts
	}
	return in, true
}

// ReceivedAt reads the _received_at of an event record as Marshal writes
// it (the last top-level member before _source, so the last occurrence of
// its key), without decoding the rest; ok is false when it is not found.
// The uploader uses it to hold back the newest records for the next batch
// (upload.holdBack); a wrong answer there only changes which batch a record
// goes in, never what is stored.
func ReceivedAt(payload []byte) (t time.Time, ok bool) {
	const key = `"_received_at":"`
	i := bytes.LastIndex(payload, []byte(key))
	if i < 0 {
		return time.Time{}, false
	}
	rest := payload[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(rest[:j]))
	return t, err == nil
}

// Decode parses an event record (the spool's event payload). It is strict:
// a record carrying an unknown field or a wrong type has drifted from the
// schema and must be quarantined by the caller, not loaded.
func Decode(b []byte) (Event, error) {
	var e Event
	if decodeFast(b, &e) {
		return finishDecode(e)
	}
	return decodeSlow(b)
}

func decodeSlow(b []byte) (Event, error) {
	var e Event
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return Event{}, fmt.Errorf("decode event: %w", err)
	}
	// Not dec.More(): it is false before a closing bracket, so `{...}]`
	// would pass.
	if _, err := dec.Token(); err != io.EOF {
		return Event{}, errors.New("decode event: trailing data after the object")
	}
	return finishDecode(e)
}

func finishDecode(e Event) (Event, error) {
	if e.ActivityID == "" || e.Activity == "" || e.TS.IsZero() || e.Source == "" {
		return Event{}, errors.New("decode event: missing one of activity_id, activity, ts, _source")
	}
	if len(e.Features) == 0 {
		e.Features = json.RawMessage("{}")
	}
	return e, nil
}

func strictUnmarshal(line []byte, in *Input) error {
	var ve ValidationError
	// A first pass over the keys gives precise messages for unknown and
	// pipeline-owned fields before the typed decode.
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(line, &keys); err != nil {
		ve.add("line", "is not a JSON object: %v", describeJSONErr(err))
		return &ve
	}
	for k := range keys {
		if pipelineFields[k] {
			ve.add(k, "is maintained by the pipeline and cannot be set by a client")
		} else if !contains(inputFields, k) {
			ve.add(k, "unknown field (allowed: %s)", strings.Join(inputFields, ", "))
		}
	}
	if len(ve.Errs) > 0 {
		return &ve
	}
	return strictDecode(line, in, &ve)
}

// strictDecode decodes line into v (a pointer to an input struct whose keys
// were already checked), turning type and syntax errors into field errors
// in ve.
func strictDecode(line []byte, v any, ve *ValidationError) error {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		var pe *time.ParseError
		switch {
		case errors.As(err, &te):
			ve.add(te.Field, "must be %s, not %s", jsonKind(te.Type.Kind().String()), te.Value)
		case errors.As(err, &pe):
			ve.add("ts", "%q is not an RFC 3339 timestamp (e.g. 2026-11-25T14:03:00Z)", pe.Value)
		case strings.Contains(err.Error(), "Time.UnmarshalJSON"):
			ve.add("ts", "must be an RFC 3339 timestamp string (e.g. \"2026-11-25T14:03:00Z\")")
		default:
			ve.add("line", "%v", describeJSONErr(err))
		}
		return ve
	}
	if _, err := dec.Token(); err != io.EOF {
		ve.add("line", "has data after the JSON object")
		return ve
	}
	return nil
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "float64", "int", "int64":
		return "a number"
	case "struct", "map":
		return "an object"
	case "slice":
		return "an array"
	case "ptr":
		return "a number"
	}
	return k
}

func describeJSONErr(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("JSON syntax error at byte %d: %v", se.Offset, se)
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
