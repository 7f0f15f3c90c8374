package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func goodAudit() Audit {
	return Audit{
		AuditID: "01JD3QA1N4W6ZB8X9C2V3M4K5P", At: fixedNow.Add(-time.Second), Principal: "analyst:alice",
		Action: ActionRanSQL, Target: "9f86d081884c7d65", Rows: 3, Bytes: 120, DurationMS: 7, Outcome: OutcomeOK,
		Detail: "SELECT 1", ReceivedAt: fixedNow, Source: SourceCLI,
	}
}

func TestValidateAuditAccepts(t *testing.T) {
	t.Parallel()
	for name, f := range map[string]func(a *Audit){
		"analyst across all customers": func(*Audit) {},
		"customer access":              func(a *Audit) { a.Customer, a.Action, a.Principal = "bob", ActionGotContext, "tok_123" },
		"analyst listing one customer": func(a *Audit) { a.Customer, a.Action = "bob", ActionListedAudit },
		"every outcome":                func(a *Audit) { a.Outcome = OutcomeCancelled },
		"no target, no detail":         func(a *Audit) { a.Target, a.Detail = "", "" },
		"multi-line detail":            func(a *Audit) { a.Detail = "SELECT *\n\tFROM claude_stream\r\n" },
		"ts at the skew limit":         func(a *Audit) { a.At = fixedNow.Add(MaxFutureSkew) },
	} {
		a := goodAudit()
		f(&a)
		before := a
		if err := ValidateAudit(&a, fixedNow); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if a != before {
			t.Errorf("%s: a valid record was rewritten: %+v", name, a)
		}
	}
	for _, act := range AuditActions() {
		a := goodAudit()
		a.Action, a.Customer = act, "bob"
		if err := ValidateAudit(&a, fixedNow); err != nil {
			t.Errorf("action %s: %v", act, err)
		}
	}
}

func TestValidateAuditRefuses(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", MaxStringLen+1)
	cases := map[string]struct {
		f    func(a *Audit)
		want string
	}{
		"no id":              {func(a *Audit) { a.AuditID = "" }, "audit_id: is required"},
		"no principal":       {func(a *Audit) { a.Principal = "" }, "principal: is required (who accessed the data"},
		"principal long":     {func(a *Audit) { a.Principal = long }, "principal: is 256 characters; the limit is 255"},
		"principal control":  {func(a *Audit) { a.Principal = "a\nb" }, "principal: contains control characters"},
		"customer long":      {func(a *Audit) { a.Customer = long }, "customer_id: is 256 characters"},
		"customer needed":    {func(a *Audit) { a.Action = ActionGotContext }, "customer_id: is required for action got_context (only an analyst's ran_sql or listed_audit may span all customers)"},
		"no action":          {func(a *Audit) { a.Action = "" }, "action: is required (one of cancelled_query, completed_query,"},
		"action not verb":    {func(a *Audit) { a.Action = "Ran SQL" }, `action: "Ran SQL" is not verb_noun`},
		"action unknown":     {func(a *Audit) { a.Action = "deleted_everything" }, `action: "deleted_everything" is not a known action (known: cancelled_query`},
		"action long":        {func(a *Audit) { a.Action = "a_" + strings.Repeat("b", MaxStringLen) }, "action: is 257 characters; the limit is 255"},
		"target long":        {func(a *Audit) { a.Target = long }, "target: is 256 characters"},
		"target bad utf8":    {func(a *Audit) { a.Target = "a\xffb" }, "target: is not valid UTF-8"},
		"negative rows":      {func(a *Audit) { a.Rows = -1 }, "rows: is -1; it must not be negative"},
		"negative bytes":     {func(a *Audit) { a.Bytes = -2 }, "bytes: is -2"},
		"negative duration":  {func(a *Audit) { a.DurationMS = -3 }, "duration_ms: is -3"},
		"no outcome":         {func(a *Audit) { a.Outcome = "" }, "outcome: is required (one of ok, refused, error, not_found, timeout, cancelled)"},
		"unknown outcome":    {func(a *Audit) { a.Outcome = "fine" }, `outcome: "fine" is not one of ok, refused`},
		"future":             {func(a *Audit) { a.At = fixedNow.Add(MaxFutureSkew + time.Microsecond) }, "at: 2026-11-25T12:05:00.000001Z is more than 5m0s in the future"},
		"before 1970":        {func(a *Audit) { a.At = time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC) }, "at: 1969-01-01T00:00:00Z is before 1970-01-01"},
		"unknown source":     {func(a *Audit) { a.Source = "fax" }, `_source: unknown source "fax" (known: mcp, hook`},
		"several at once":    {func(a *Audit) { a.Principal, a.Outcome = "", "" }, "principal: is required"},
		"id with a newline":  {func(a *Audit) { a.AuditID = "a\nb" }, "audit_id: contains control characters"},
		"customer bad utf-8": {func(a *Audit) { a.Customer = "\xc3" }, "customer_id: is not valid UTF-8"},
	}
	for name, tc := range cases {
		a := goodAudit()
		tc.f(&a)
		err := ValidateAudit(&a, fixedNow)
		if err == nil {
			t.Errorf("%s: accepted %+v", name, a)
			continue
		}
		if !IsValidation(err) || !strings.HasPrefix(err.Error(), "invalid audit record: ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q; want it to contain %q", name, err, tc.want)
		}
	}
	// Every problem at once, in a stable order.
	a := goodAudit()
	a.Principal, a.Action, a.Rows, a.Outcome = "", "nope", -1, "?"
	var ve *ValidationError
	if err := ValidateAudit(&a, fixedNow); !errors.As(err, &ve) {
		t.Fatalf("want a ValidationError, got %v", err)
	}
	var fields []string
	for _, fe := range ve.Errs {
		fields = append(fields, fe.Field)
	}
	if got := strings.Join(fields, ","); got != "principal,action,rows,outcome" {
		t.Fatalf("fields %s (%v)", got, ve)
	}
}

func TestAuditDetailTruncatedNotRefused(t *testing.T) {
	t.Parallel()
	for name, detail := range map[string]string{
		"ascii":            strings.Repeat("a", MaxAuditDetailBytes+1),
		"multibyte at cut": strings.Repeat("é", MaxAuditDetailBytes),
		"emoji":            strings.Repeat("😀", MaxAuditDetailBytes/2),
		"huge":             strings.Repeat("SELECT 1; ", 100_000),
		"bad bytes":        strings.Repeat("\xff", MaxAuditDetailBytes),
	} {
		if !AuditDetailTruncated(detail) {
			t.Errorf("%s: AuditDetailTruncated = false", name)
		}
		a := goodAudit()
		a.Detail = detail
		if err := ValidateAudit(&a, fixedNow); err != nil {
			t.Errorf("%s: refused: %v", name, err)
			continue
		}
		marker := fmt.Sprintf(auditTruncatedFormat, len(detail))
		if len(a.Detail) > MaxAuditDetailBytes || !utf8.ValidString(a.Detail) || !strings.HasSuffix(a.Detail, marker) {
			t.Errorf("%s: stored detail of %d bytes, valid %v, ends %q; want <= %d bytes ending %q", name,
				len(a.Detail), utf8.ValidString(a.Detail), a.Detail[max(0, len(a.Detail)-40):], MaxAuditDetailBytes, marker)
		}
		if len(a.Detail) < MaxAuditDetailBytes-len(marker)-utf8.UTFMax {
			t.Errorf("%s: cut to %d bytes, more than needed", name, len(a.Detail))
		}
		// Validating the stored form changes nothing (the uploader
		// validates again what Record wrote).
		again := a
		if err := ValidateAudit(&again, fixedNow); err != nil || again.Detail != a.Detail {
			t.Errorf("%s: second validation changed the detail or failed: %v", name, err)
		}
	}
	exact := strings.Repeat("a", MaxAuditDetailBytes)
	if AuditDetailTruncated(exact) {
		t.Error("a detail of exactly the limit is reported truncated")
	}
	// Control characters and bad bytes become U+FFFD; tab and line breaks stay.
	a := goodAudit()
	a.Detail = "a\x00b\x1bc\x7fd\xffe\tf\ng\rh"
	if err := ValidateAudit(&a, fixedNow); err != nil {
		t.Fatal(err)
	}
	if want := "a\uFFFDb\uFFFDc\uFFFDd\uFFFDe\tf\ng\rh"; a.Detail != want {
		t.Fatalf("detail %q; want %q", a.Detail, want)
	}
}

// marshalAuditRef is encoding/json's encoding, the reference MarshalAudit
// must equal.
func marshalAuditRef(a *Audit) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(a); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func checkMarshalAudit(t *testing.T, a *Audit) {
	t.Helper()
	want, werr := marshalAuditRef(a)
	got, gerr := MarshalAudit(a)
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("error: got %v, encoding/json %v for %#v", gerr, werr, a)
	}
	if werr == nil && !bytes.Equal(got, want) {
		t.Fatalf("MarshalAudit differs from encoding/json:\ngot  %s\nwant %s", got, want)
	}
	prefix := []byte("x")
	got, gerr = AppendMarshalAudit(prefix[:1:1], a)
	if werr != nil {
		want = nil
	}
	if !bytes.Equal(got, append([]byte("x"), want...)) || (gerr == nil) != (werr == nil) {
		t.Fatalf("AppendMarshalAudit: got %q, %v", got, gerr)
	}
}

func TestMarshalAudit(t *testing.T) {
	t.Parallel()
	odd := goodAudit()
	odd.Principal, odd.Customer, odd.Target = "tok_\u2028<&>\"\\", "\xff\x01é", "\u2029"
	odd.Detail = "line 1\nline 2\t\"quoted\" <b>&amp;</b>"
	odd.Rows, odd.Bytes, odd.DurationMS = 1<<62, 0, 9_223_372_036_854_775_807
	odd.At = time.Date(2026, 1, 2, 3, 4, 5, 6000, time.FixedZone("x", 3600))
	empty := Audit{}
	badTime := goodAudit()
	badTime.At = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	badRecv := goodAudit()
	badRecv.ReceivedAt = time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, a := range []Audit{goodAudit(), odd, empty, badTime, badRecv} {
		checkMarshalAudit(t, &a)
	}
	b, err := MarshalAudit(&odd)
	if err != nil || bytes.ContainsAny(b, "\n\r") {
		t.Fatalf("encoded %q, %v: want one line", b, err)
	}
}

func TestAuditRoundTrip(t *testing.T) {
	t.Parallel()
	a := goodAudit()
	a.Customer, a.Action, a.Detail = "bob \"the\" <builder>", ActionFetchedResult, "multi\nline"
	b, err := MarshalAudit(&a)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeAudit(b)
	if err != nil {
		t.Fatal(err)
	}
	if !equalAudit(got, a) {
		t.Fatalf("round trip changed the record:\n%+v\n%+v", a, got)
	}
}

func TestDecodeAuditRejectsDrift(t *testing.T) {
	t.Parallel()
	const good = `{"audit_id":"A1","at":"2026-01-01T00:00:00Z","principal":"analyst:alice","action":"ran_sql","target":"abc","rows":1,"bytes":2,"duration_ms":3,"outcome":"ok","_received_at":"2026-01-01T00:00:00Z","_source":"cli"}`
	if _, err := DecodeAudit([]byte(good)); err != nil {
		t.Fatalf("good record: %v", err)
	}
	for name, tc := range map[string]struct{ rec, want string }{
		"unknown column":  {strings.Replace(good, `"audit_id"`, `"who":"x","audit_id"`, 1), `unknown field "who"`},
		"wrong type":      {strings.Replace(good, `"rows":1`, `"rows":"1"`, 1), "decode audit record"},
		"fractional rows": {strings.Replace(good, `"rows":1`, `"rows":1.5`, 1), "decode audit record"},
		"missing columns": {strings.Replace(good, `"at":"2026-01-01T00:00:00Z","principal":"analyst:alice",`, "", 1), "missing at, principal"},
		"bad action":      {strings.Replace(good, `"ran_sql"`, `"dropped_table"`, 1), "is not a known action"},
		"customer needed": {strings.Replace(good, `"ran_sql"`, `"got_context"`, 1), "customer_id: is required for action got_context"},
		"bad outcome":     {strings.Replace(good, `"ok"`, `"great"`, 1), "outcome"},
		"future":          {strings.Replace(good, `"at":"2026-01-01T00:00:00Z"`, `"at":"2026-01-01T00:06:00Z"`, 1), "in the future"},
		"trailing data":   {good + `{}`, "trailing data"},
		"not an object":   {`[]`, "decode audit record"},
		"too large":       {strings.Replace(good, `"target":"abc"`, `"detail":"`+strings.Repeat("a", MaxAuditRecordBytes)+`"`, 1), "the limit is 65536"},
	} {
		_, err := DecodeAudit([]byte(tc.rec))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v; want it to contain %q", name, err, tc.want)
		}
	}
	// A long detail in a hand-written record is cut, not refused.
	a, err := DecodeAudit([]byte(strings.Replace(good, `"target":"abc"`, `"detail":"`+strings.Repeat("a", 2*MaxAuditDetailBytes)+`"`, 1)))
	if err != nil || len(a.Detail) > MaxAuditDetailBytes || !strings.Contains(a.Detail, "truncated from 8192 bytes") {
		t.Fatalf("detail of %d bytes, %v", len(a.Detail), err)
	}
}

func equalAudit(a, b Audit) bool {
	return a.AuditID == b.AuditID && a.At.Equal(b.At) && a.Principal == b.Principal && a.Customer == b.Customer &&
		a.Action == b.Action && a.Target == b.Target && a.Rows == b.Rows && a.Bytes == b.Bytes &&
		a.DurationMS == b.DurationMS && a.Outcome == b.Outcome && a.Detail == b.Detail &&
		a.ReceivedAt.Equal(b.ReceivedAt) && a.Source == b.Source
}

// FuzzAudit: no input panics DecodeAudit. A record it accepts is valid as
// stored (validating again changes nothing), MarshalAudit encodes it byte
// for byte as encoding/json does, on one line, and that decodes back to the
// same record.
func FuzzAudit(f *testing.F) {
	g := goodAudit()
	rec, _ := MarshalAudit(&g)
	f.Add(rec)
	for _, s := range []string{
		`{"audit_id":"A1","at":"2026-01-01T00:00:00Z","principal":"analyst:alice","action":"ran_sql","rows":0,"bytes":0,"duration_ms":0,"outcome":"refused","detail":"DROP TABLE x; -- \u2028 <&> \"q\" \\ \t","_received_at":"2026-01-01T00:00:00.000001Z","_source":"cli"}`,
		`{"audit_id":"B","at":"2026-01-01T00:00:00+05:00","principal":"tok_1","customer_id":"bob","action":"got_context","target":"user","rows":1,"bytes":2048,"duration_ms":1,"outcome":"ok","_received_at":"2026-01-01T00:00:00Z","_source":"mcp"}`,
		`{"audit_id":"C","at":"2026-01-01T00:00:00Z","principal":"p","action":"ran_sql","rows":-1,"bytes":0,"duration_ms":0,"outcome":"ok","_received_at":"2026-01-01T00:00:00Z","_source":"cli"}`,
		`{"audit_id":"D","at":"2026-01-01T00:00:00Z","principal":"p","action":"ran_sql","rows":1e2,"bytes":0,"duration_ms":0,"outcome":"ok","detail":"\ud800\u0000","_received_at":"2026-01-01T00:00:00Z","_source":"cli"}`,
		`{`, `null`, `[]`, `{"audit_id":1}`, `{"rows":9223372036854775808}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := DecodeAudit(b)
		if err != nil {
			return
		}
		again := a
		if err := ValidateAudit(&again, a.ReceivedAt); err != nil || again != a {
			t.Fatalf("decoded record does not validate unchanged: %v\n%+v\n%+v", err, a, again)
		}
		checkMarshalAudit(t, &a)
		enc, err := MarshalAudit(&a)
		if err != nil {
			t.Fatalf("marshal of a decoded record: %v", err)
		}
		if bytes.ContainsAny(enc, "\n\r") {
			t.Fatalf("newline in encoded record %q", enc)
		}
		got, err := DecodeAudit(enc)
		if err != nil {
			t.Fatalf("decode of own encoding %q: %v", enc, err)
		}
		if !equalAudit(got, a) {
			t.Fatalf("round trip changed %+v -> %+v", a, got)
		}
	})
}
