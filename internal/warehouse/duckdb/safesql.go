package duckdb

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/activitybi/activitybi/internal/warehouse"
)

// Analyst SQL is checked by DuckDB's own parser before it runs:
// json_serialize_sql(sql) serializes only SELECT statements (anything else is
// an error object) and lists every statement, so "exactly one SELECT" is
// decided by the engine that will run it, not by a prefix check. The
// statement's syntax tree is then walked: table functions must be on an
// allow-list (file readers, scans of other systems and catalog functions are
// not), a few scalar functions with side effects are refused, and a table
// name that looks like a file path is refused (DuckDB would treat it as a
// replacement scan of that file).
//
// This check gives clear refusals; it is not the only guard. The database has
// external access disabled and its configuration locked, and the statement
// runs in a READ ONLY transaction.
//
// Customer mode (CustomerQuery, customer.go) adds one rule: a table is named
// only by its bare name, and that name is a customer table or a CTE of the
// statement in scope. A schema or catalog would step past the connection's
// shadow views to the unfiltered tables, so it is refused; so are tables
// without a customer's rows, the engine's catalog views (duckdb_tables,
// information_schema...), DESCRIBE/SHOW/SUMMARIZE and qualified function
// names. There the check is half of the boundary: the shadow views filter
// what a bare name reads, the check makes sure only bare names are read.

// allowedTableFunctions are the table functions an analyst may call: they
// produce rows from their arguments only.
var allowedTableFunctions = map[string]bool{
	"range":           true,
	"generate_series": true,
	"unnest":          true,
	"json_each":       true,
	"json_tree":       true,
}

// deniedFunctions are scalar functions that change state.
var deniedFunctions = map[string]string{
	"nextval":   "nextval() advances a sequence",
	"setseed":   "setseed() changes the session's random state",
	"write_log": "write_log() writes to the engine's log",
}

func unsafe(format string, args ...any) error {
	return &warehouse.UnsafeSQLError{Reason: fmt.Sprintf(format, args...)}
}

// serialized is json_serialize_sql's answer.
type serialized struct {
	Error        bool              `json:"error"`
	ErrorType    string            `json:"error_type"`
	ErrorMessage string            `json:"error_message"`
	Statements   []json.RawMessage `json:"statements"`
}

// checkMode selects the rules of checkSQL.
type checkMode int

const (
	// analystMode: Query's rules.
	analystMode checkMode = iota
	// customerMode: Query's rules plus bare names of customer tables only.
	customerMode
)

// checkSQL returns nil if q is exactly one SELECT statement that uses only
// allowed functions (and, in customer mode, only bare names of customer
// tables), an *UnsafeSQLError if it must be refused, or another error (a
// syntax error, a failure to ask DuckDB).
func checkSQL(ctx context.Context, conn *sql.Conn, q string, mode checkMode) error {
	if strings.TrimSpace(q) == "" {
		return unsafe("empty statement")
	}
	var js string
	if err := conn.QueryRowContext(ctx, `SELECT json_serialize_sql(?::VARCHAR)::VARCHAR`, q).Scan(&js); err != nil {
		return fmt.Errorf("parse sql: %w", err)
	}
	var s serialized
	if err := json.Unmarshal([]byte(js), &s); err != nil {
		return fmt.Errorf("parse sql: %w", err)
	}
	if s.Error {
		if s.ErrorType == "parser" {
			return fmt.Errorf("sql syntax: %s", s.ErrorMessage)
		}
		return classify(conn, q, s.ErrorMessage)
	}
	switch len(s.Statements) {
	case 0:
		return unsafe("empty statement")
	case 1:
	default:
		return unsafe("%d statements; exactly one SELECT statement is allowed", len(s.Statements))
	}
	var tree any
	if err := json.Unmarshal(s.Statements[0], &tree); err != nil {
		return fmt.Errorf("parse sql: %w", err)
	}
	return walker{customer: mode == customerMode}.walk(tree, nil)
}

// walker walks a statement's syntax tree.
type walker struct {
	customer bool // customer mode
}

// walk refuses disallowed table functions, functions and file-like tables
// anywhere in the syntax tree (subqueries, CTEs, joins, expressions). ctes
// holds the lower-cased names of the CTEs in scope at n (customer mode
// only).
func (w walker) walk(n any, ctes map[string]bool) error {
	switch n := n.(type) {
	case []any:
		for _, c := range n {
			if err := w.walk(c, ctes); err != nil {
				return err
			}
		}
	case map[string]any:
		typ, _ := n["type"].(string)
		switch {
		case typ == "TABLE_FUNCTION":
			fn, _ := n["function"].(map[string]any)
			name, _ := fn["function_name"].(string)
			if !allowedTableFunctions[strings.ToLower(name)] {
				return unsafe("table function %s() is not allowed%s (allowed: %s)", name, whyDenied(name), allowedList())
			}
		case typ == "BASE_TABLE":
			name, _ := n["table_name"].(string)
			if strings.ContainsAny(name, `/\:`) || strings.Contains(name, ".") {
				return unsafe("%q looks like a file or URL; queries read only the warehouse's tables", name)
			}
			if w.customer {
				if err := customerTableRef(n, name, ctes); err != nil {
					return err
				}
			}
		case typ == "SHOW_REF" && w.customer:
			return unsafe("DESCRIBE, SHOW and SUMMARIZE are not allowed in a customer query")
		case n["class"] == "FUNCTION":
			name, _ := n["function_name"].(string)
			if why, ok := deniedFunctions[strings.ToLower(name)]; ok {
				return unsafe("%s", why)
			}
			if w.customer {
				schema, _ := n["schema"].(string)
				catalog, _ := n["catalog"].(string)
				if (schema != "" || catalog != "") && !parserQualified(name, schema, catalog) {
					return unsafe("function %s is qualified with a schema or catalog; a customer query calls functions by their bare names", name)
				}
			}
		}
		if w.customer {
			if cm, ok := n["cte_map"].(map[string]any); ok {
				return w.walkWithCTEs(n, cm, ctes)
			}
		}
		for _, c := range n {
			if err := w.walk(c, ctes); err != nil {
				return err
			}
		}
	}
	return nil
}

// walkWithCTEs walks a query node that defines CTEs. Each CTE sees the CTEs
// defined before it (and, if it is recursive, itself in its recursive
// branch only); the rest of the node sees them all. Over-approximating the
// scope would let a name that DuckDB resolves to a table pass as a CTE, so
// the scope follows DuckDB's order.
func (w walker) walkWithCTEs(n, cteMap map[string]any, outer map[string]bool) error {
	scope := make(map[string]bool, len(outer)+4)
	for k := range outer {
		scope[k] = true
	}
	entries, _ := cteMap["map"].([]any)
	for _, e := range entries {
		entry, _ := e.(map[string]any)
		name, _ := entry["key"].(string)
		name = strings.ToLower(name)
		body := entry["value"]
		if err := w.walkCTEBody(body, name, scope); err != nil {
			return err
		}
		if name != "" {
			scope[name] = true
		}
	}
	for k, c := range n {
		if k == "cte_map" {
			continue
		}
		if err := w.walk(c, scope); err != nil {
			return err
		}
	}
	return nil
}

// literalFunctions are the functions DuckDB's parser itself writes for
// literal syntax, qualified with the main schema: [1, 2] is
// main.list_value(1, 2), {'k': v} main.struct_pack, MAP {...} main.map,
// (a, b) main.row, and x AT TIME ZONE z main.timezone. A function is not a
// table: the qualification cannot reach past the shadow views, so these are
// admitted with it. Any other qualified function is still refused.
var literalFunctions = map[string]bool{
	"list_value":  true,
	"struct_pack": true,
	"map":         true,
	"row":         true,
	"timezone":    true,
}

// parserQualified reports whether a qualified function call is one the
// parser wrote for literal syntax (see literalFunctions).
func parserQualified(name, schema, catalog string) bool {
	return catalog == "" && strings.EqualFold(schema, "main") && literalFunctions[strings.ToLower(name)]
}

// walkCTEBody walks the body of the CTE name (a cte_map value) with the
// CTEs of scope. A recursive CTE sees itself in its recursive branch
// ("right") only: in its anchor ("left") DuckDB looks the name up in the
// catalog, so a recursive CTE named duckdb_tables read the engine's
// catalog view there as if it were the CTE (found in review, session 8).
func (w walker) walkCTEBody(body any, name string, scope map[string]bool) error {
	m, _ := body.(map[string]any)
	q, _ := m["query"].(map[string]any)
	node, _ := q["node"].(map[string]any)
	if node["type"] != "RECURSIVE_CTE_NODE" {
		return w.walk(body, scope)
	}
	inner := make(map[string]bool, len(scope)+1)
	for k := range scope {
		inner[k] = true
	}
	inner[name] = true
	for k, v := range m {
		if k != "query" {
			if err := w.walk(v, scope); err != nil {
				return err
			}
		}
	}
	for k, v := range q {
		if k != "node" {
			if err := w.walk(v, scope); err != nil {
				return err
			}
		}
	}
	for k, v := range node {
		s := scope
		if k == "right" {
			s = inner
		}
		if err := w.walk(v, s); err != nil {
			return err
		}
	}
	return nil
}

// customerTableRef checks one table reference of a customer query.
func customerTableRef(ref map[string]any, name string, ctes map[string]bool) error {
	schema, _ := ref["schema_name"].(string)
	catalog, _ := ref["catalog_name"].(string)
	if schema != "" || catalog != "" {
		full := name
		if schema != "" {
			full = schema + "." + full
		}
		if catalog != "" {
			full = catalog + "." + full
		}
		return unsafe("%s names a schema or catalog; a customer query names tables by their bare names (%s)", full, customerTableList())
	}
	if at := ref["at_clause"]; at != nil {
		return unsafe("AT (time travel) is not allowed in a customer query")
	}
	l := strings.ToLower(name)
	if ctes[l] {
		return nil
	}
	if _, ok := customerTables[l]; ok {
		return nil
	}
	return unsafe("%s is not a customer table; a customer query reads only %s", name, customerTableList())
}

func whyDenied(name string) string {
	l := strings.ToLower(name)
	switch {
	case strings.HasPrefix(l, "read_") || strings.HasSuffix(l, "_scan") || strings.HasPrefix(l, "parquet_") ||
		l == "glob" || l == "sniff_csv" || strings.HasPrefix(l, "iceberg") || strings.HasPrefix(l, "delta"):
		return ": it reads files or other systems"
	case l == "query" || l == "query_table":
		return ": it runs SQL given as text"
	case strings.HasPrefix(l, "duckdb_") || strings.HasPrefix(l, "pragma_"):
		return ": it reads the engine's configuration"
	}
	return ""
}

func allowedList() string {
	names := make([]string, 0, len(allowedTableFunctions))
	for n := range allowedTableFunctions {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// classify explains why a statement that is not a plain SELECT is refused.
// The driver's Prepare refuses several statements without running any and
// otherwise only binds the one statement (no execution); its statement type
// names the kind. The first keyword is the fallback when binding fails.
func classify(conn *sql.Conn, q, serializeErr string) error {
	var reason string
	_ = conn.Raw(func(dc any) error {
		c, ok := dc.(*duckdb.Conn)
		if !ok {
			return nil
		}
		st, err := c.Prepare(q)
		if err != nil {
			if strings.Contains(err.Error(), "multi-statement") {
				reason = "more than one statement; exactly one SELECT statement is allowed"
				if strings.Contains(strings.ToUpper(q), "PIVOT") {
					// DuckDB runs a PIVOT without an IN list as a query
					// for the values followed by the pivot.
					reason = pivotReason
				}
			}
			return nil
		}
		defer st.Close()
		if ds, ok := st.(*duckdb.Stmt); ok {
			if t, err := ds.StatementType(); err == nil {
				reason = reasonForType(t)
				if t == duckdb.STATEMENT_TYPE_SELECT {
					// A read-only form the checker cannot see into.
					reason = "this statement cannot be checked (" + serializeErr + "); write it as a plain SELECT"
				}
			}
		}
		return nil
	})
	if reason == "" {
		reason = reasonForKeyword(firstKeyword(q))
	}
	return unsafe("%s", reason)
}

const pivotReason = "PIVOT without an IN list runs as several statements and cannot be checked; " +
	"list the values, as a subquery: SELECT * FROM (PIVOT t ON col IN ('a', 'b') USING count(*))"

func reasonForType(t duckdb.StmtType) string {
	switch t {
	case duckdb.STATEMENT_TYPE_INSERT, duckdb.STATEMENT_TYPE_UPDATE, duckdb.STATEMENT_TYPE_DELETE,
		duckdb.STATEMENT_TYPE_CREATE, duckdb.STATEMENT_TYPE_CREATE_FUNC, duckdb.STATEMENT_TYPE_DROP,
		duckdb.STATEMENT_TYPE_ALTER, duckdb.STATEMENT_TYPE_ANALYZE, duckdb.STATEMENT_TYPE_VACUUM:
		return "writes and DDL are not allowed; queries are read-only"
	case duckdb.STATEMENT_TYPE_COPY:
		return "COPY is not allowed: queries cannot read or write files"
	case duckdb.STATEMENT_TYPE_ATTACH, duckdb.STATEMENT_TYPE_DETACH:
		return "ATTACH/DETACH is not allowed: queries see only this warehouse"
	case duckdb.STATEMENT_TYPE_PRAGMA, duckdb.STATEMENT_TYPE_SET, duckdb.STATEMENT_TYPE_VARIABLE_SET:
		return "PRAGMA, SET and RESET are not allowed: the configuration is fixed"
	case duckdb.STATEMENT_TYPE_LOAD, duckdb.STATEMENT_TYPE_EXTENSION:
		return "INSTALL and LOAD are not allowed: extensions cannot be added"
	case duckdb.STATEMENT_TYPE_CALL:
		return "CALL is not allowed"
	case duckdb.STATEMENT_TYPE_EXPORT:
		return "EXPORT DATABASE is not allowed: queries cannot write files"
	case duckdb.STATEMENT_TYPE_TRANSACTION:
		return "transaction control is not allowed: each query runs in its own read-only transaction"
	case duckdb.STATEMENT_TYPE_EXPLAIN:
		return "EXPLAIN is not supported; run the SELECT itself"
	case duckdb.STATEMENT_TYPE_PREPARE, duckdb.STATEMENT_TYPE_EXECUTE:
		return "PREPARE and EXECUTE are not allowed"
	}
	return "only a single SELECT statement is allowed"
}

func reasonForKeyword(kw string) string {
	switch kw {
	case "INSERT", "UPDATE", "DELETE", "MERGE", "CREATE", "DROP", "ALTER", "TRUNCATE", "VACUUM", "ANALYZE", "CHECKPOINT", "FORCE", "COMMENT":
		return "writes and DDL are not allowed; queries are read-only"
	case "COPY":
		return reasonForType(duckdb.STATEMENT_TYPE_COPY)
	case "ATTACH", "DETACH", "USE":
		return reasonForType(duckdb.STATEMENT_TYPE_ATTACH)
	case "PRAGMA", "SET", "RESET":
		return reasonForType(duckdb.STATEMENT_TYPE_SET)
	case "INSTALL", "LOAD", "UPDATE_EXTENSIONS":
		return reasonForType(duckdb.STATEMENT_TYPE_LOAD)
	case "CALL":
		return reasonForType(duckdb.STATEMENT_TYPE_CALL)
	case "EXPORT", "IMPORT":
		return "EXPORT/IMPORT DATABASE is not allowed: queries cannot touch files"
	case "BEGIN", "START", "COMMIT", "END", "ROLLBACK", "ABORT":
		return reasonForType(duckdb.STATEMENT_TYPE_TRANSACTION)
	case "EXPLAIN":
		return reasonForType(duckdb.STATEMENT_TYPE_EXPLAIN)
	}
	return "only a single SELECT statement is allowed"
}

// firstKeyword returns the first word of q in upper case, skipping
// whitespace, comments and opening parentheses.
func firstKeyword(q string) string {
	for {
		q = strings.TrimLeft(q, " \t\r\n(")
		switch {
		case strings.HasPrefix(q, "--"):
			i := strings.IndexByte(q, '\n')
			if i < 0 {
				return ""
			}
			q = q[i+1:]
		case strings.HasPrefix(q, "/*"):
			i := strings.Index(q, "*/")
			if i < 0 {
				return ""
			}
			q = q[i+2:]
		default:
			end := strings.IndexFunc(q, func(r rune) bool {
				return !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
			})
			if end < 0 {
				end = len(q)
			}
			return strings.ToUpper(q[:end])
		}
	}
}
