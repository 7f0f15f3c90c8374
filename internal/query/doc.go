// Package query is activitybi's query engine: every analytical question
// (submit_query) becomes a ticket that a bounded worker pool runs
// asynchronously through the warehouse's customer-scoped read path, within
// a timeout, a result byte cap (with sampling) and a per-customer budget;
// results are kept as files for a while and read back in pages that fit a
// tool's output.
//
// (The full design notes follow in a later revision of this comment.)
package query
