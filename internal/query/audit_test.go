package query

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/activitybi/activitybi/internal/event"
)

// TestAuditTargetOfAnyTemplateName: the template name of a submission is
// the caller's text (submit_query passes it on as given), and it goes into
// the audit record's target. The audit log refuses a record whose target
// is not valid UTF-8 or holds control characters, so such a name must not
// make a submission (here: refused ones, as unknown templates) unaudited.
func TestAuditTargetOfAnyTemplateName(t *testing.T) {
	t.Parallel()
	db := openWarehouse(t)
	e, b := newEngine(t, db, Options{})
	names := []string{
		"by_activity\n; DROP TABLE claude_stream",
		"tab\there",
		"nul\x00byte",
		"bad utf-8 \xff\xfe",
		strings.Repeat("€", 30), // 90 bytes, clipped for the message: not inside a character
		"by_activity\u2028",
	}
	for _, name := range names {
		if _, err := e.Submit(context.Background(), "alice", "test", Request{Template: name}); err == nil {
			t.Fatalf("template %q accepted", name)
		}
	}
	now := time.Now().UTC()
	var n int
	for _, a := range b.audits() {
		if a.Action != "submit_query" {
			continue
		}
		n++
		r := event.Audit{AuditID: "a1", At: a.At, Principal: a.Principal, Customer: a.Customer,
			Action: event.ActionSubmittedQuery, Target: a.Target, Outcome: event.OutcomeRefused,
			Detail: a.Detail, Source: event.SourceAPI}
		if err := event.ValidateAudit(&r, now.Add(time.Hour)); err != nil {
			t.Errorf("the audit log would refuse the record of a submission (target %q): %v", a.Target, err)
		}
	}
	if n != len(names) {
		t.Errorf("%d submissions audited, want %d", n, len(names))
	}
}
