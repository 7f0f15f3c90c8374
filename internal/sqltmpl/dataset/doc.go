// Package dataset compiles ActivitySchema datasets to SQL.
//
// A dataset (Spec) is one row per cohort row: the rows of one activity for
// each customer (all of them, or the first, last or nth occurrence, within
// a time window, passing feature filters), with columns appended from
// other activities of the same customer, each through a relationship:
// first_ever, last_ever, first_before, last_before, first_after,
// last_after, first_in_between, last_in_between (the related row's ts and
// features), aggregate_before, aggregate_after, aggregate_in_between and
// aggregate_all_ever (a count, sum, avg, min or max). The names and the
// meaning follow dbt-activity-schema (tnightengale) and Narrator's
// datasets; where they leave a choice this package decides as follows:
//
//   - Before and after compare ts strictly: a row at the cohort row's
//     instant is neither. (dbt-activity-schema's last_before takes ts <=
//     the cohort row's, and its first_before bounds the first row by the
//     next cohort row instead of this one; here both mean what their names
//     say, as in Narrator.)
//   - In between is (cohort ts, next ts], where next ts is the ts of the
//     next row of the cohort activity for the customer (among rows that
//     pass the cohort's filters, whatever the cohort's occurrence mode or
//     time window), and unbounded for the last one. The windows of one
//     customer tile time, so every appended row after the first cohort
//     row is in exactly one window.
//   - First and last order rows by (ts, activity_id), as
//     _activity_occurrence does.
//   - An appended activity's filters define the activity: first_ever with
//     a filter is the first row that passes it.
//   - Appending never duplicates or drops cohort rows: a cohort row without
//     a related row gets NULL (a count gets 0).
//
// Decode reads a spec from JSON strictly (every problem reported at once,
// with its JSON path, in a *SpecError) and returns it in canonical form,
// whose Canonical bytes identify the query for caching. Compile writes one
// SELECT for DuckDB or Snowflake in which every value from the spec is a
// bound argument; only validated, quoted column aliases come from the spec
// into the text. The statement reads the bare table claude_stream and
// never filters on customer: isolation is the caller's (DuckDB's customer
// views through warehouse CustomerQuery, Snowflake's row access policy),
// and every relationship joins on the cohort row's customer, so the same
// statement is correct on a table of many customers.
//
// The statement relies on the loader's occurrence columns, maintained per
// (customer, activity) in (ts, activity_id) order: _activity_occurrence
// (unique, 1-based) and _activity_repeated_at (NULL on the last row).
// Compile documents which relationship uses which and why.
package dataset
