package dataset

import (
	"fmt"
	"strings"
)

// Dialects Compile writes.
const (
	DialectDuckDB    = "duckdb"
	DialectSnowflake = "snowflake"
)

// Compiled is a dataset as one SELECT statement.
type Compiled struct {
	// SQL reads the bare table claude_stream, with ? placeholders.
	SQL string
	// Args are the values of the placeholders, in order: strings,
	// float64, int64 and time.Time (UTC).
	Args []any
	// Columns are the names of the result columns, in order.
	Columns []string
}

// dialect is what differs between the warehouses: reading a feature.
type dialect struct {
	// text reads feature ? of alias's feature_json as text (a JSON
	// string's value unquoted, other values as JSON), NULL when absent.
	text string
	// num reads it as a DOUBLE, NULL when absent or not a number.
	num string
}

var dialects = map[string]dialect{
	// json_extract_string takes the bound key as a key name (no $ path),
	// and feature keys are plain names anyway.
	DialectDuckDB: {
		text: `json_extract_string(%s.feature_json, ?)`,
		num:  `TRY_CAST(json_extract_string(%s.feature_json, ?) AS DOUBLE)`,
	},
	// GET on a VARIANT with a bound key; ::VARCHAR gives a string's value
	// unquoted, as DuckDB's json_extract_string does.
	DialectSnowflake: {
		text: `GET(%s.feature_json, ?)::VARCHAR`,
		num:  `TRY_TO_DOUBLE(GET(%s.feature_json, ?)::VARCHAR)`,
	},
}

// Compile validates s and writes it as one SELECT for dialect d ("duckdb"
// or "snowflake"). Every value of the spec (activity names, feature keys,
// filter values, times, limits) is bound; the only names from the spec in
// the text are output column aliases, validated and double-quoted.
//
// The statement reads claude_stream by its bare name and does not filter on
// customer: which customers it sees is the caller's isolation (DuckDB's
// customer views, Snowflake's row access policy). Every relationship
// matches rows of the cohort row's own customer, so it is also correct on a
// table of many customers.
//
// How each relationship is computed, and why (n rows of a customer):
//   - first_ever, last_ever, first_before, last_after: the related row is
//     the customer's first or last row of the activity. Without filters it
//     is found by _activity_occurrence = 1 or _activity_repeated_at IS NULL,
//     a plain equality join; with filters, by min/max occurrence per
//     customer.
//   - last_before, first_after, aggregate_before, aggregate_after: a sweep.
//     Cohort rows and the appended activity's rows are put in one ts order
//     per customer, and a running max/min of _activity_occurrence (or a
//     running aggregate) is read at each cohort row: O(n log n), where a
//     join on ts < ts is O(n^2) per customer.
//   - *_in_between: every appended row belongs to the last row of the
//     cohort activity before it (the same sweep, over the cohort activity's
//     rows); grouping by that owner gives first (min occurrence), last
//     (max) and aggregates per cohort row. The owner is what
//     _activity_repeated_at bounds: (ts, next ts].
//   - aggregate_all_ever: one GROUP BY customer.
//
// The related row's columns are then read by (customer, activity,
// _activity_occurrence), which the loader keeps unique; every helper holds
// at most one row per cohort row, so no join duplicates a cohort row.
func Compile(s *Spec, d string) (*Compiled, error) {
	dl, ok := dialects[d]
	if !ok {
		return nil, fmt.Errorf("compile dataset: unknown dialect %s (duckdb or snowflake)", quote(d))
	}
	if s == nil {
		return nil, fmt.Errorf("compile dataset: %w", &SpecError{Problems: []Problem{{Msg: "no spec"}}})
	}
	p, err := s.prepare()
	if err != nil {
		return nil, fmt.Errorf("compile dataset: %w", err)
	}
	c := compiler{d: dl}
	return c.compile(p), nil
}

// sqlb builds SQL text with its arguments in placeholder order.
type sqlb struct {
	b    strings.Builder
	args []any
}

// add writes sql, whose placeholders take args in order. A mismatch is a
// bug in this package, never a property of the input.
func (q *sqlb) add(sql string, args ...any) {
	if n := strings.Count(sql, "?"); n != len(args) {
		panic(fmt.Sprintf("dataset: %d placeholders, %d args in %q", n, len(args), sql))
	}
	q.b.WriteString(sql)
	q.args = append(q.args, args...)
}

func (q *sqlb) addf(format string, args ...any) { q.add(fmt.Sprintf(format, args...)) }

// expr is an SQL expression with its arguments.
type expr struct {
	sql  string
	args []any
}

func (q *sqlb) expr(e expr) { q.add(e.sql, e.args...) }

type compiler struct {
	d dialect
}

func (c compiler) text(alias, key string) expr {
	return expr{fmt.Sprintf(c.d.text, alias), []any{key}}
}

func (c compiler) num(alias, key string) expr {
	return expr{fmt.Sprintf(c.d.num, alias), []any{key}}
}

// column reads a feature key, or the revenue_impact or link column, of
// alias as an output value.
func (c compiler) column(alias, name string) expr {
	switch name {
	case ColRevenueImpact, ColLink:
		return expr{alias + "." + name, nil}
	}
	return c.text(alias, name)
}

// ident quotes a validated column alias.
func ident(name string) string { return `"` + name + `"` }

// filter writes "AND <condition>" for each filter on alias.
func (c compiler) filters(q *sqlb, alias string, fs []Filter, indent string) {
	for _, f := range fs {
		q.add("\n" + indent + "AND ")
		q.expr(c.filter(alias, f))
	}
}

var cmpOps = map[string]string{OpEq: "=", OpNe: "IS DISTINCT FROM", OpGt: ">", OpGte: ">=", OpLt: "<", OpLte: "<="}

func (c compiler) filter(alias string, f Filter) expr {
	numeric := false
	switch v := f.Value.(type) {
	case float64:
		numeric = true
	case []any:
		_, numeric = v[0].(float64)
	}
	var target expr
	switch {
	case f.Feature == ColRevenueImpact || f.Feature == ColLink:
		target = expr{alias + "." + f.Feature, nil}
	case numeric:
		target = c.num(alias, f.Feature)
	default:
		target = c.text(alias, f.Feature)
	}
	args := append([]any(nil), target.args...)
	switch f.Op {
	case OpContains:
		return expr{"contains(" + target.sql + ", ?)", append(args, f.Value)}
	case OpIn:
		l := f.Value.([]any)
		return expr{target.sql + " IN (" + strings.Repeat("?, ", len(l)-1) + "?)", append(args, l...)}
	}
	v := f.Value
	if b, ok := v.(bool); ok {
		// A JSON boolean reads as the text true or false.
		v = fmt.Sprint(b)
	}
	return expr{target.sql + " " + cmpOps[f.Op] + " ?", append(args, v)}
}

// appendSrc writes the appended activity's rows: FROM claude_stream AS s
// WHERE activity and filters.
func (c compiler) appendSrc(q *sqlb, a *Append, indent string) {
	q.add("\n" + indent + "FROM claude_stream AS s")
	q.add("\n"+indent+"WHERE s.activity = ?", a.Activity)
	c.filters(q, "s", a.Filters, indent+"  ")
}

// aggValue is the appended row's value an aggregate reads; typ is its SQL
// type for the cohort side of a sweep.
func (c compiler) aggValue(a *Append) (e expr, typ string) {
	switch {
	case a.Of == "":
		return expr{"s._activity_occurrence", nil}, "BIGINT"
	case a.Of == ColRevenueImpact:
		return expr{"s.revenue_impact", nil}, "DOUBLE"
	case a.Aggregate == AggCount:
		return c.text("s", a.Of), "VARCHAR"
	}
	return c.num("s", a.Of), "DOUBLE"
}

func (c compiler) compile(s *Spec) *Compiled {
	var with, sel, from sqlb
	cols := append([]string(nil), cohortColumns...)

	with.add("WITH cohort_stream AS (")
	with.add("\n  SELECT s.customer, s.activity_id, s.ts, s._activity_occurrence AS occ,")
	with.add("\n    s._activity_repeated_at AS next_ts, s.feature_json, s.revenue_impact, s.link")
	with.add("\n  FROM claude_stream AS s")
	with.add("\n  WHERE s.activity = ?", s.Cohort.Activity)
	c.filters(&with, "s", s.Cohort.Filters, "    ")
	with.add("\n),\ncohort AS (")
	c.cohort(&with, &s.Cohort)
	with.add("\n)")

	sel.add("SELECT c.activity_id AS \"activity_id\", c.ts AS \"ts\", c.customer AS \"customer\"")
	for _, f := range s.Cohort.Features {
		sel.add(",\n  ")
		sel.expr(c.column("c", f))
		sel.add(" AS " + ident(f))
		cols = append(cols, f)
	}
	from.add("\nFROM cohort AS c")

	for i := range s.Appends {
		a := &s.Appends[i]
		n := i + 1
		x, al := fmt.Sprintf("x%d", n), fmt.Sprintf("a%d", n)
		cte := fmt.Sprintf("append_%d", n)
		if isFirstLast(a.Relationship) {
			c.firstLast(&with, &from, a, cte, x, al)
			sel.addf(",\n  %s.ts AS %s", al, ident(a.As+"_ts"))
			cols = append(cols, a.As+"_ts")
			for _, f := range a.Features {
				sel.add(",\n  ")
				sel.expr(c.column(al, f))
				sel.add(" AS " + ident(a.As+"_"+f))
				cols = append(cols, a.As+"_"+f)
			}
			continue
		}
		c.aggregate(&with, &from, a, cte, x)
		name := a.As + "_" + a.Aggregate
		if a.Aggregate == AggCount && a.Relationship != AggregateBefore && a.Relationship != AggregateAfter {
			// No related rows means no helper row: the count is 0.
			sel.addf(",\n  coalesce(%s.agg_value, 0) AS %s", x, ident(name))
		} else {
			sel.addf(",\n  %s.agg_value AS %s", x, ident(name))
		}
		cols = append(cols, name)
	}

	from.add("\nORDER BY c.customer, c.ts, c.activity_id")
	from.add("\nLIMIT ?", int64(s.Limit))

	var out sqlb
	out.add(with.b.String(), with.args...)
	out.add("\n")
	out.add(sel.b.String(), sel.args...)
	out.add(from.b.String(), from.args...)
	return &Compiled{SQL: out.b.String(), Args: out.args, Columns: cols}
}

// cohort writes the body of the cohort CTE: rows of cohort_stream chosen by
// occurrence and time window. Without filters the loader's occurrence
// columns say which row is first, last or nth; with filters occurrences are
// counted among the filtered rows.
func (c compiler) cohort(q *sqlb, co *Cohort) {
	q.add("\n  SELECT customer, activity_id, ts, occ, feature_json, revenue_impact, link")
	var conds []expr
	if len(co.Filters) == 0 {
		q.add("\n  FROM cohort_stream")
		switch co.Occurrence {
		case OccurrenceFirst:
			conds = append(conds, expr{"occ = 1", nil})
		case OccurrenceLast:
			conds = append(conds, expr{"next_ts IS NULL", nil})
		case OccurrenceNth:
			conds = append(conds, expr{"occ = ?", []any{int64(co.Nth)}})
		}
	} else {
		var pick string
		switch co.Occurrence {
		case OccurrenceFirst:
			pick = "min(occ) OVER (PARTITION BY customer)"
			conds = append(conds, expr{"occ = pick", nil})
		case OccurrenceLast:
			pick = "max(occ) OVER (PARTITION BY customer)"
			conds = append(conds, expr{"occ = pick", nil})
		case OccurrenceNth:
			pick = "row_number() OVER (PARTITION BY customer ORDER BY occ)"
			conds = append(conds, expr{"pick = ?", []any{int64(co.Nth)}})
		}
		if pick == "" {
			q.add("\n  FROM cohort_stream")
		} else {
			q.add("\n  FROM (")
			q.add("\n    SELECT customer, activity_id, ts, occ, feature_json, revenue_impact, link,")
			q.add("\n      " + pick + " AS pick")
			q.add("\n    FROM cohort_stream")
			q.add("\n  ) AS r")
		}
	}
	if co.From != nil {
		conds = append(conds, expr{"ts >= ?", []any{*co.From}})
	}
	if co.To != nil {
		conds = append(conds, expr{"ts < ?", []any{*co.To}})
	}
	for i, e := range conds {
		if i == 0 {
			q.add("\n  WHERE ")
		} else {
			q.add("\n    AND ")
		}
		q.expr(e)
	}
}

// firstLast writes a first_* or last_* append: a helper CTE (when one is
// needed) that finds the related row's occurrence per cohort row, and the
// joins that read it.
func (c compiler) firstLast(with, from *sqlb, a *Append, cte, x, al string) {
	rel := a.Relationship
	join := func(match string, extra string) {
		from.addf("\nLEFT JOIN claude_stream AS %s ON %s.customer = c.customer", al, al)
		from.add(fmt.Sprintf("\n  AND %s.activity = ?", al), a.Activity)
		from.addf("\n  AND %s", match)
		if extra != "" {
			from.addf("\n  AND %s", extra)
		}
	}
	switch rel {
	case FirstEver, FirstBefore, LastEver, LastAfter:
		first := rel == FirstEver || rel == FirstBefore
		var extra string
		switch rel {
		case FirstBefore:
			extra = al + ".ts < c.ts"
		case LastAfter:
			extra = al + ".ts > c.ts"
		}
		if len(a.Filters) == 0 {
			if first {
				join(al+"._activity_occurrence = 1", extra)
			} else {
				join(al+"._activity_repeated_at IS NULL", extra)
			}
			return
		}
		agg := "max"
		if first {
			agg = "min"
		}
		with.addf(",\n%s AS (", cte)
		with.addf("\n  SELECT s.customer, %s(s._activity_occurrence) AS match_occ", agg)
		c.appendSrc(with, a, "  ")
		with.add("\n  GROUP BY s.customer")
		with.add("\n)")
		from.addf("\nLEFT JOIN %s AS %s ON %s.customer = c.customer", cte, x, x)
		join(al+"._activity_occurrence = "+x+".match_occ", extra)
	case LastBefore, FirstAfter:
		agg := "max"
		if rel == FirstAfter {
			agg = "min"
		}
		c.sweep(with, a, cte, fmt.Sprintf("%s(a_val) OVER (%s) AS match_occ", agg, sweepWindow(rel == FirstAfter)),
			expr{"s._activity_occurrence", nil}, "BIGINT", "match_occ")
		from.addf("\nLEFT JOIN %s AS %s ON %s.customer = c.customer AND %s.activity_id = c.activity_id", cte, x, x, x)
		join(al+"._activity_occurrence = "+x+".match_occ", "")
	case FirstInBetween, LastInBetween:
		agg := "min"
		if rel == LastInBetween {
			agg = "max"
		}
		c.owners(with, a, cte, agg+"(a_val) AS match_occ", expr{"s._activity_occurrence", nil}, "BIGINT")
		from.addf("\nLEFT JOIN %s AS %s ON %s.customer = c.customer AND %s.owner_occ = c.occ", cte, x, x, x)
		join(al+"._activity_occurrence = "+x+".match_occ", "")
	}
}

// aggregate writes an aggregate_* append.
func (c compiler) aggregate(with, from *sqlb, a *Append, cte, x string) {
	val, typ := c.aggValue(a)
	switch a.Relationship {
	case AggregateBefore, AggregateAfter:
		c.sweep(with, a, cte, fmt.Sprintf("%s(a_val) OVER (%s) AS agg_value", a.Aggregate, sweepWindow(a.Relationship == AggregateAfter)),
			val, typ, "agg_value")
		from.addf("\nLEFT JOIN %s AS %s ON %s.customer = c.customer AND %s.activity_id = c.activity_id", cte, x, x, x)
	case AggregateInBetween:
		c.owners(with, a, cte, a.Aggregate+"(a_val) AS agg_value", val, typ)
		from.addf("\nLEFT JOIN %s AS %s ON %s.customer = c.customer AND %s.owner_occ = c.occ", cte, x, x, x)
	case AggregateAllEver:
		with.addf(",\n%s AS (", cte)
		with.add("\n  SELECT s.customer, " + a.Aggregate + "(")
		with.expr(val)
		with.add(") AS agg_value")
		c.appendSrc(with, a, "  ")
		with.add("\n  GROUP BY s.customer")
		with.add("\n)")
		from.addf("\nLEFT JOIN %s AS %s ON %s.customer = c.customer", cte, x, x)
	}
}

// sweepWindow is the window of a sweep: the rows of the customer from the
// first, in ts order, to the cohort row. At equal ts the cohort row comes
// first (cohort_row DESC), so an appended row at the cohort row's instant
// is not in its frame: "before" is strict. "After" runs the same sweep
// backwards (ts DESC), so that its frame also starts at UNBOUNDED
// PRECEDING: DuckDB computes such a frame as a running aggregate, and a
// frame that ends at UNBOUNDED FOLLOWING cost twice the CPU (first_after
// on 100K events of one customer: ~100 against ~240 ms).
func sweepWindow(after bool) string {
	order := "ts, cohort_row DESC"
	if after {
		order = "ts DESC, cohort_row DESC"
	}
	return "PARTITION BY customer ORDER BY " + order + " ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW"
}

// sweep writes a CTE with one row per cohort row: the cohort rows and the
// appended activity's rows (a_val = val) in one order per customer, and
// window (over a_val) read at each cohort row as column out.
// cohort_row is 1 for cohort rows and 0 for appended rows. Cohort rows
// carry a NULL a_val, which no aggregate counts, so the frame may include
// them.
func (c compiler) sweep(with *sqlb, a *Append, cte, window string, val expr, typ, out string) {
	with.addf(",\n%s AS (", cte)
	with.addf("\n  SELECT customer, activity_id, %s", out)
	with.add("\n  FROM (")
	with.add("\n    SELECT customer, activity_id, cohort_row,")
	with.add("\n      " + window)
	with.add("\n    FROM (")
	with.addf("\n      SELECT customer, activity_id, ts, 1 AS cohort_row, CAST(NULL AS %s) AS a_val", typ)
	with.add("\n      FROM cohort")
	with.add("\n      UNION ALL")
	with.add("\n      SELECT s.customer, s.activity_id, s.ts, 0 AS cohort_row, ")
	with.expr(val)
	with.add(" AS a_val")
	c.appendSrc(with, a, "      ")
	with.add("\n    ) AS u")
	with.add("\n  ) AS w")
	with.add("\n  WHERE cohort_row = 1")
	with.add("\n)")
}

// owners writes a CTE with one row per row of the cohort activity that has
// appended rows in between: each appended row (a_val = val) is owned by the
// last cohort_stream row strictly before it (at equal ts the appended row
// sorts first), which is the row whose (ts, next ts] holds it; agg
// aggregates a_val per owner.
func (c compiler) owners(with *sqlb, a *Append, cte, agg string, val expr, typ string) {
	with.addf(",\n%s AS (", cte)
	with.add("\n  SELECT customer, owner_occ, " + agg)
	with.add("\n  FROM (")
	with.add("\n    SELECT customer, cohort_row, a_val,")
	with.add("\n      max(owner) OVER (PARTITION BY customer ORDER BY ts, cohort_row ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS owner_occ")
	with.add("\n    FROM (")
	with.addf("\n      SELECT customer, ts, 1 AS cohort_row, occ AS owner, CAST(NULL AS %s) AS a_val", typ)
	with.add("\n      FROM cohort_stream")
	with.add("\n      UNION ALL")
	with.add("\n      SELECT s.customer, s.ts, 0 AS cohort_row, CAST(NULL AS BIGINT) AS owner, ")
	with.expr(val)
	with.add(" AS a_val")
	c.appendSrc(with, a, "      ")
	with.add("\n    ) AS u")
	with.add("\n  ) AS w")
	with.add("\n  WHERE cohort_row = 0 AND owner_occ IS NOT NULL")
	with.add("\n  GROUP BY customer, owner_occ")
	with.add("\n)")
}
