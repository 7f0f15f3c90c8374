package query

import (
	"context"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/activitybi/activitybi/internal/artifact"
)

// TestResultsInArtifactStore: with Options.Results, a succeeded ticket's
// result is an artifact of its customer (none in Dir), pages read from it
// are the same rows a file gives, a restarted engine finds it again, and
// expiry deletes it from the store.
func TestResultsInArtifactStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openWarehouse(t)
	clk := &clock{t: t0}
	arts, err := artifact.Open(ctx, artifact.Options{URL: "mem://", Index: db, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { arts.Close() })

	e, b := newEngine(t, db, Options{Store: db, Results: arts, Now: clk.Now, ResultTTL: time.Hour})
	stop := run(t, e)
	tk := waitFinal(t, e, "alice", submit(t, e, "alice", "by_activity", "").ID)
	if tk.State != StateSucceeded || tk.ResultArtifact == "" || tk.ResultPath != "" {
		t.Fatalf("ticket %+v", tk)
	}
	if ents, err := os.ReadDir(b.dir); err != nil || len(ents) != 0 {
		t.Errorf("result directory has %d entries (%v), want none", len(ents), err)
	}
	m, err := arts.Stat(ctx, "alice", tk.ResultArtifact)
	if err != nil || m.Kind != artifact.KindQueryResult || m.ContentType != artifact.ResultContentType ||
		m.Name != tk.ID+".ndjson" || !m.ExpiresAt.Equal(tk.ExpiresAt.Add(resultStoreSlack)) {
		t.Fatalf("artifact %+v, %v (ticket expires %s)", m, err, tk.ExpiresAt)
	}
	if _, err := arts.GetResult(ctx, "bob", tk.ResultArtifact, 1<<20); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("bob reads alice's result: %v", err)
	}
	_, got := allRows(t, e, "alice", tk.ID, 3)

	// The same question answered into files gives the same rows.
	files, _ := newEngine(t, db, Options{Now: clk.Now})
	run(t, files)
	ref := waitFinal(t, files, "alice", submit(t, files, "alice", "by_activity", "").ID)
	_, want := allRows(t, files, "alice", ref.ID, 1000)
	if len(got) == 0 || !reflect.DeepEqual(got, want) {
		t.Fatalf("rows from the artifact store %v, from a file %v", got, want)
	}
	if tab, _, err := e.Table(ctx, "alice", tk.ID, 100); err != nil || len(tab.Rows) != len(want) {
		t.Fatalf("Table: %v rows, %v", tab, err)
	}

	// A restart reads the reference back from query_tickets.
	stop()
	again, _ := newEngine(t, db, Options{Store: db, Results: arts, Now: clk.Now, ResultTTL: time.Hour})
	s, err := again.Status(ctx, "alice", tk.ID)
	if err != nil || s.ResultArtifact != tk.ResultArtifact || s.ResultPath != "" {
		t.Fatalf("after a restart: %+v %v", s, err)
	}
	if _, rows := allRows(t, again, "alice", tk.ID, 1000); !reflect.DeepEqual(rows, want) {
		t.Errorf("rows after a restart %v", rows)
	}
	// An engine without the store says where the result is rather than
	// reading a file that is not there.
	bare, _ := newEngine(t, db, Options{Store: db, Now: clk.Now, ResultTTL: time.Hour})
	if _, err := bare.Result(ctx, "alice", tk.ID, 0, 1); err == nil || !errors.Is(err, ErrNoResult) {
		t.Errorf("an engine without the store: %v", err)
	}

	// Expiry by a lookup; the next sweep deletes the artifact.
	clk.Add(time.Hour)
	if s, err := again.Status(ctx, "alice", tk.ID); err != nil || s.State != StateExpired || s.ResultArtifact != "" {
		t.Fatalf("after the TTL: %+v %v", s, err)
	}
	dels := again.sweep(clk.Now())
	if len(dels) != 1 || dels[0] != (resultToDelete{"alice", tk.ResultArtifact}) {
		t.Fatalf("sweep returned %+v", dels)
	}
	again.deleteResult(ctx, dels[0].customer, dels[0].ref)
	if _, err := arts.Stat(ctx, "alice", tk.ResultArtifact); !errors.Is(err, artifact.ErrNotFound) {
		t.Errorf("expired result still stored: %v", err)
	}
}

// TestResultStoreFailure: a result that cannot be stored fails its ticket
// with the store's reason, and the budget's unfinished count comes back.
func TestResultStoreFailure(t *testing.T) {
	t.Parallel()
	e, _ := setup(t, Options{Results: failingResults{}})
	tk := waitFinal(t, e, "alice", submit(t, e, "alice", "by_activity", "").ID)
	if tk.State != StateFailed || tk.ResultArtifact != "" || !strings.Contains(tk.Error, "write the result: bucket unreachable") {
		t.Fatalf("ticket %+v", tk)
	}
	e.mu.Lock()
	n := e.custs["alice"].unfinished
	e.mu.Unlock()
	if n != 0 {
		t.Errorf("%d unfinished after a failed write", n)
	}
}

type failingResults struct{}

func (failingResults) PutResult(context.Context, string, string, []byte, time.Time) (string, error) {
	return "", errors.New("bucket unreachable")
}
func (failingResults) GetResult(context.Context, string, string, int64) ([]byte, error) {
	return nil, os.ErrNotExist
}
func (failingResults) DeleteResult(context.Context, string, string) error { return nil }
