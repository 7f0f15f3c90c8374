package server

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/activitybi/activitybi/internal/artifact"
	"github.com/activitybi/activitybi/internal/audit"
	"github.com/activitybi/activitybi/internal/event"
	"github.com/activitybi/activitybi/internal/spool"
)

// TestArtifactReadsAreAudited: every read of an artifact — GET
// /artifacts/{id} over TCP and resources/read over /mcp — is one
// fetched_artifact record under the token that asked, and so is another
// customer's attempt (not_found).
func TestArtifactReadsAreAudited(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	db := migratedWarehouse(t, dir)
	store, err := artifact.Open(ctx, artifact.Options{DataDir: dir, Index: db})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	recs := &memAppender{}
	alog, err := audit.New(audit.Options{Appender: recs, Source: event.SourceAPI})
	if err != nil {
		t.Fatal(err)
	}
	cards := &CardRenderer{Store: store, Audit: alog}
	b := setupHTTP(t, spool.Options{}, func(o *Options) { o.Cards = cards; o.Artifacts = store; o.Audit = alog })
	m, err := store.Put(ctx, "alice", artifact.Meta{ContentType: "image/svg+xml", Kind: "card_svg", Name: "c.svg"},
		strings.NewReader(`<svg xmlns="http://www.w3.org/2000/svg"/>`))
	if err != nil {
		t.Fatal(err)
	}

	get := func(token string) int {
		req, _ := http.NewRequest(http.MethodGet, b.url+"/artifacts/"+m.ID, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := get(tokA); c != http.StatusOK {
		t.Fatalf("owner's GET = %d", c)
	}
	if c := get(tokB); c != http.StatusNotFound {
		t.Fatalf("another customer's GET = %d", c)
	}
	for _, tk := range []string{tokA, tokB} {
		tr := &mcp.StreamableClientTransport{Endpoint: b.url + "/mcp", HTTPClient: &http.Client{Transport: bearerTransport{tk}}}
		cs, err := mcp.NewClient(&mcp.Implementation{Name: "t", Version: "1"}, nil).Connect(ctx, tr, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: artifactScheme + m.ID})
		if (err == nil) != (tk == tokA) {
			t.Fatalf("resources/read with %s: %v", tk, err)
		}
		cs.Close()
	}

	var got []string
	recs.mu.Lock()
	for _, r := range recs.recs {
		kind, body, _ := cut(r)
		if kind != "audit" {
			continue
		}
		var a event.Audit
		if err := json.Unmarshal([]byte(body), &a); err != nil {
			t.Fatal(err)
		}
		if a.Action != event.ActionFetchedArtifact || a.Target != m.ID {
			t.Errorf("unexpected record %+v", a)
			continue
		}
		if a.Outcome == event.OutcomeOK && a.Bytes != m.Size {
			t.Errorf("record %+v: bytes want %d", a, m.Size)
		}
		got = append(got, a.Principal+" "+a.Customer+" "+a.Outcome)
	}
	recs.mu.Unlock()
	sort.Strings(got)
	want := []string{"token:a alice ok", "token:a alice ok", "token:b bob not_found", "token:b bob not_found"}
	if !equalStrings(got, want) {
		t.Fatalf("audit records:\n got %q\nwant %q", got, want)
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
