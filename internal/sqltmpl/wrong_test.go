package sqltmpl

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"testing/fstest"

	"github.com/activitybi/activitybi/internal/warehouse"
)

// wrongTemplate is a deliberately wrong template: it tries to read another
// customer's rows (a filter naming bob, OR-ed with true, and no filter at
// all on the insights it joins). Isolation does not depend on templates
// being right: run as alice, it still sees only alice's rows.
const wrongTemplate = `/*
name: wrong
description: A deliberately wrong template that tries to read every customer's rows, for the isolation test.
reads: every event and insight, of any customer
timeout: 10s
params:
  - {name: who, type: string, default: bob, description: the customer it tries to read}
columns:
  - {name: customer, type: VARCHAR, description: whose rows}
  - {name: events, type: BIGINT, description: events read}
  - {name: insights, type: BIGINT, description: insights read}
card: {kind: table}
*/

-- dialect: duckdb
SELECT s.customer, count(*) AS events,
    (SELECT count(*) FROM insight_atoms) AS insights
FROM claude_stream s
WHERE s.customer = $who OR s.customer <> $who OR true
GROUP BY s.customer
ORDER BY s.customer

-- dialect: snowflake
SELECT s.customer AS "customer", COUNT(*) AS "events",
    (SELECT COUNT(*) FROM insight_atoms) AS "insights"
FROM claude_stream s
WHERE s.customer = $who OR s.customer <> $who OR TRUE
GROUP BY 1
ORDER BY 1
`

func TestWrongTemplateStillIsolated(t *testing.T) {
	t.Parallel()
	lib, err := LoadFS(fstest.MapFS{"wrong.sql": {Data: []byte(wrongTemplate)}})
	if err != nil {
		t.Fatal(err)
	}
	db := fixture(t)
	ctx := context.Background()
	// What the whole warehouse holds, as the analyst sees it.
	all, err := db.Query(ctx, `SELECT count(DISTINCT customer), count(*) FROM claude_stream`, 0)
	if err != nil {
		t.Fatal(err)
	}
	if all.Rows[0][0] != int64(2) {
		t.Fatalf("the fixture should hold two customers: %v", all.Rows)
	}
	for _, who := range []string{"alice", "bob"} {
		r, err := lib.Render("wrong", json.RawMessage(`{"who": "`+other(who)+`"}`), DuckDB, fxNow)
		if err != nil {
			t.Fatal(err)
		}
		tab, err := db.CustomerQuery(ctx, who, r.SQL, r.Args, 0)
		if err != nil {
			t.Fatalf("%s: %v", who, err)
		}
		if len(tab.Rows) != 1 || tab.Rows[0][0] != who {
			t.Fatalf("%s ran the wrong template and saw %v; want only its own rows", who, tab.Rows)
		}
		own, err := db.Query(ctx, `SELECT (SELECT count(*) FROM claude_stream WHERE customer = '`+who+`'), (SELECT count(*) FROM insight_atoms WHERE customer_id = '`+who+`')`, 0)
		if err != nil {
			t.Fatal(err)
		}
		if tab.Rows[0][1] != own.Rows[0][0] || tab.Rows[0][2] != own.Rows[0][1] {
			t.Errorf("%s: counted %v events and %v insights; it has %v and %v", who, tab.Rows[0][1], tab.Rows[0][2], own.Rows[0][0], own.Rows[0][1])
		}
	}
	// A template that names the table behind the views is refused before
	// it runs.
	bad := `SELECT count(*) FROM main.claude_stream`
	_, err = db.CustomerQuery(ctx, "alice", bad, nil, 0)
	var u *warehouse.UnsafeSQLError
	if !errors.As(err, &u) {
		t.Errorf("a qualified table name: %v; want a refusal", err)
	}
}

func other(who string) string {
	if who == "alice" {
		return "bob"
	}
	return "alice"
}
