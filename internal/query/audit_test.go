package query

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/activitybi/activitybi/internal/audit"
	"github.com/activitybi/activitybi/internal/event"
	"github.com/activitybi/activitybi/internal/spool"
)

// TestAuditTargetOfAnyTemplateName: the template name of a submission is
// the caller's text (submit_query passes it on as given), and it goes into
// the audit record's target. Such a name must not make a submission (here:
// refused ones, as unknown templates) unaudited: every entry the engine
// reports is taken by the real audit log (which cleans and clips targets).
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
	w, err := spool.Open(spool.Options{Dir: filepath.Join(t.TempDir(), "spool")})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	l, err := audit.New(audit.Options{Appender: w, Source: event.SourceAPI, Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for _, a := range b.audits() {
		if a.Action != "submit_query" {
			continue
		}
		n++
		r := event.Audit{At: a.At, Principal: a.Principal, Customer: a.Customer,
			Action: event.ActionSubmittedQuery, Target: a.Target, Outcome: event.OutcomeRefused, Detail: a.Detail}
		if err := l.Record(r); err != nil {
			t.Errorf("the audit log refused the record of a submission (target %q): %v", a.Target, err)
		}
	}
	if n != len(names) {
		t.Errorf("%d submissions audited, want %d", n, len(names))
	}
}
