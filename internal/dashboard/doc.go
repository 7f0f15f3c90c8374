// Package dashboard serves activitybi's web pages on the core: Overview
// (activity over time, sessions, tool calls, errors, cost by model and
// day, tool latency p50/p95), Tools, Cost, Insights (atoms with sparklines
// and their provenance), Queries (tickets, results and cards), Memory
// (what get_context returns now) and Pipeline (spool depth, lag, uploader
// state, quarantine), each filtered by a date range and a project.
//
// # Pages
//
// Pages are server-rendered with html/template from embedded files; the
// stylesheet is embedded too, and there is no script at all, so the
// dashboard works offline with no build step. Charts are SVG, drawn by
// Options.Cards (the card package's renderer, so that the dashboard shows
// the cards Claude gets) or by a small renderer of its own, and embedded
// as data: images: an SVG drawn by an <img> runs no script and its styles
// do not meet the page's Content-Security-Policy.
//
// # Data
//
// Every number comes from one of the statements in sql/*.sql, run through
// the warehouse's CustomerQuery as the signed-in customer: the customer
// tables' bare names see only that customer's rows, whatever a statement
// says, and every value (range, project, limits) is a bound parameter.
// The statements of a page run concurrently. The range is [from, to) on
// ts (created_at for tickets and artifacts); a project narrows events to
// those naming it and to the sessions in which some event names it.
//
// # Who sees what
//
// Local(customer) is the default for a core on loopback: no sign-in, but
// only requests from a loopback address that name a loopback host (so a
// web page rebinding its DNS name to 127.0.0.1 is refused). Tokens(verify)
// is server mode: /login takes an activitybi bearer token, and a random
// session id (256 bits, kept hashed, in memory, SessionTTL) is set as an
// HttpOnly, SameSite=Strict cookie, Secure and __Host- over TLS; the
// token is verified again on every view, so a revoked token ends the
// sign-in. POSTs pass net/http's cross-origin protection, and sign-out
// also needs the session's CSRF token. Every answer carries a strict CSP
// (no script, no framing), X-Frame-Options DENY and nosniff. A request
// that names a customer (parameter or header) is refused: the customer
// is always the transport's. [Dashboard.Customer] answers the same
// question for the core's GET /artifacts/{id}, so that the cards and files
// the Queries page links to open with the dashboard's sign-in.
//
// # Why its own SQL
//
// The statements are the dashboard's, as memory's are, rather than SafeSQL
// templates: every page takes the project filter, which the templates do
// not have, and a page needs several aggregates of one range that no
// template returns together. They are DuckDB SQL; a Snowflake warehouse
// needs a dialect of them, as the templates have.
//
// # Limits
//
// Each limit is a named constant and counted when hit
// (activitybi_dashboard_limit_hits_total): MaxRange for a from/to span,
// MaxTableRows per table, MaxSessions sign-ins, MaxLoginBody, and the
// values of an insight's trend (sampled down to about 120 in SQL, however
// often it was logged; limit "points"). Metrics:
// activitybi_dashboard_page_renders_total{page,status},
// activitybi_dashboard_render_duration_seconds{page},
// activitybi_dashboard_logins_total{outcome}.
package dashboard
