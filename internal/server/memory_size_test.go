package server

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/activitybi/activitybi/internal/cache"
	"github.com/activitybi/activitybi/internal/memory"
	"github.com/activitybi/activitybi/internal/memory/memorytest"
	"github.com/activitybi/activitybi/internal/spool"
	"github.com/activitybi/activitybi/internal/warehouse/duckdb"
)

// TestGetContextBigCustomer is the size test through the tool: a customer
// with 1M events and 10,000 insights (beside another customer) asks
// get_context through an MCP client, with the core's whole memory path
// behind it (cache, store, context_cache, builder, DuckDB). Every page,
// at every budget from the least to the most, fits max_tokens by the
// project's token estimate applied to what the client received, and paging
// through the whole context at a small budget returns every item once,
// none of the other customer's. Writing the fixture takes ~5 s on an idle
// machine.
func TestGetContextBigCustomer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "big.duckdb")
	start := time.Now()
	if err := memorytest.WriteBig(ctx, path); err != nil {
		t.Fatal(err)
	}
	t.Logf("fixture written in %s", time.Since(start).Round(time.Millisecond))
	db, err := duckdb.Open(ctx, duckdb.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	now := func() time.Time { return memorytest.BigNow }
	b, err := memory.NewBuilder(memory.Options{Warehouse: db, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	store, err := memory.NewStore(memory.StoreOptions{Builder: b, Warehouse: db, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Wait)
	c, err := cache.New(cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	tb := setupToolsWith(t, "big", spool.Options{}, &Memory{Cache: c, Load: StoreLoader(store)})

	call := func(args map[string]any) (string, GetContextResult, int) {
		t.Helper()
		res := tb.call(t, "get_context", args)
		if res.IsError {
			t.Fatalf("get_context %v: %s", args, text(res))
		}
		sc, err := json.Marshal(res.StructuredContent)
		if err != nil {
			t.Fatal(err)
		}
		var r GetContextResult
		if err := json.Unmarshal(sc, &r); err != nil {
			t.Fatal(err)
		}
		tx := text(res)
		if strings.Contains(tx, "other") || strings.Contains(string(sc), "other") {
			t.Fatalf("the other customer's context shows: %.300s", tx)
		}
		return tx, r, wireTokens(len(tx), len(sc))
	}

	// The first call builds (and writes the row), the next is L1; after
	// L1 is dropped the row answers. All the same version.
	_, first, _ := call(nil)
	store.Wait()
	_, second, _ := call(nil)
	c.InvalidateLocal("big")
	_, third, _ := call(nil)
	if first.Source != "load" || second.Source != "l1" || third.Source != "load" ||
		first.Version != second.Version || second.Version != third.Version {
		t.Fatalf("sources %s %s %s, versions %d %d %d", first.Source, second.Source, third.Source, first.Version, second.Version, third.Version)
	}
	counts := first.Counts
	if counts.Sessions != memory.DefaultRecentSessions || counts.Insights != memory.DefaultMaxInsights || counts.Facts != 70 || counts.Tools != 12 {
		t.Fatalf("counts %+v", counts)
	}

	for _, mt := range []int{memory.MinMaxTokens, 500, memory.DefaultMaxTokens, 5000, memory.HardMaxTokens} {
		for _, items := range []bool{false, true} {
			_, p, tokens := call(map[string]any{"max_tokens": mt, "items": items})
			if tokens > mt || p.Tokens > mt {
				t.Errorf("max_tokens %d items %v: the page is %d tokens by the estimate (%d by the page)", mt, items, tokens, p.Tokens)
			}
			// Text alone, the whole context fits in the hard limit.
			if !p.Truncated && (items || mt < memory.HardMaxTokens) {
				t.Errorf("max_tokens %d items %v: the whole context fit; the test wants it big", mt, items)
			}
		}
	}
	// No max_tokens: the default. The structured content carries the
	// text (a client such as Claude Code gives the model only the
	// structured content) and, unless asked for, no items.
	tx, def, tokens := call(nil)
	if tokens > memory.DefaultMaxTokens {
		t.Errorf("default page: %d tokens", tokens)
	}
	if def.Text != tx || !strings.Contains(tx, "## facts to remember") || len(itemKeys(def.Items)) != 0 {
		t.Errorf("default page: structured text equal to the text content: %v; %d structured items", def.Text == tx, len(itemKeys(def.Items)))
	}
	// With items, the same items in both forms, fewer of them per page.
	tx2, withItems, _ := call(map[string]any{"items": true})
	if n := len(itemKeys(withItems.Items)); withItems.Text != tx2 || n == 0 || n != strings.Count(tx2, "\n- ") || n >= strings.Count(tx, "\n- ") {
		t.Errorf("items=true: %d structured items, %d in its text, %d in the default page's text", n, strings.Count(tx2, "\n- "), strings.Count(tx, "\n- "))
	}

	// Page to the end at 500 tokens: every item once.
	seen := map[string]bool{}
	total := counts.Facts + counts.Sessions + counts.Insights + counts.Tools + counts.Failures + counts.Tickets
	cursor, pages := "", 0
	for {
		args := map[string]any{"max_tokens": 500, "items": true}
		if cursor != "" {
			args["cursor"] = cursor
		}
		_, p, tokens := call(args)
		pages++
		if tokens > 500 {
			t.Fatalf("page %d: %d tokens", pages, tokens)
		}
		for _, k := range itemKeys(p.Items) {
			if seen[k] {
				t.Fatalf("page %d repeats %s", pages, k)
			}
			seen[k] = true
		}
		if !p.Truncated {
			break
		}
		if pages > total {
			t.Fatal("paging does not end")
		}
		cursor = p.NextCursor
	}
	if len(seen) != total {
		t.Fatalf("paged %d items in %d pages, want %d", len(seen), pages, total)
	}
	t.Logf("%d items in %d pages of at most 500 tokens", total, pages)
}

// wireTokens is memory.EstimateTokens of what the client got: its text
// and its structured content, which holds the stale and source fields that
// the estimate's ReserveBytes stands for, so without that reserve.
func wireTokens(textBytes, jsonBytes int) int {
	units := textBytes*memory.JSONBytesPerToken + jsonBytes*memory.TextBytesPerToken
	per := memory.TextBytesPerToken * memory.JSONBytesPerToken
	return (units + per - 1) / per
}

// itemKeys names every item of a page.
func itemKeys(it memory.Items) []string {
	var out []string
	for _, x := range it.Facts {
		out = append(out, "fact "+x.Subject+" "+x.Metric)
	}
	for _, x := range it.Sessions {
		out = append(out, fmt.Sprintf("session %s %s", x.ID, x.Start))
	}
	for _, x := range it.Insights {
		out = append(out, "insight "+x.Subject+" "+x.Metric)
	}
	for _, x := range it.Tools {
		out = append(out, "tool "+x.Server+" "+x.Tool)
	}
	for _, x := range it.Failures {
		out = append(out, fmt.Sprintf("failure %s %s", x.TS, x.Tool))
	}
	for _, x := range it.Tickets {
		out = append(out, "ticket "+x.ID)
	}
	return out
}
