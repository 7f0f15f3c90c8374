package duckdb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/activitybi/activitybi/internal/warehouse"
)

// Customer queries: structural isolation in one DuckDB process.
//
// CustomerQuery runs on its own pool of connections (cust), never on the
// analyst's. Every connection of that pool, when it is opened, shadows every
// table and view of the main schema with a TEMP VIEW of the same name; DuckDB
// resolves an unqualified name in the temp catalog first, so `claude_stream`
// on such a connection is the view, not the table. A customer table's view
// keeps the rows whose customer column equals the connection-local variable
// activitybi_customer; every other table's view is empty. A call sets the
// variable with a bound parameter, runs the statement in a READ ONLY
// transaction, rolls back and unsets the variable: an idle connection's views
// are empty, and a connection whose unset fails is discarded.
//
// Views per connection, not per call: creating the ten views takes ~5 ms
// (DuckDB binds each view's query), and creating them in every call's
// transaction added 2.5-3.5 ms to a call; setting and unsetting the
// variable costs ~0.2 ms (bench/warehouse.md, "Customer queries"). Reading
// through a view costs nothing measurable over the table. DuckDB binds
// getvariable() as a constant, so the filter is pushed into the scan exactly
// as a literal would be. The customer is bound, never spliced into SQL text,
// so no customer name can change a statement.
//
// The views alone do not isolate: a qualified name (main.claude_stream, or
// the database's name) reaches the table behind the view. So the statement
// check runs in customer mode (safesql.go) and admits bare names of customer
// tables and of the statement's CTEs only.
//
// Migrate renews the pool, so that connections opened afterwards shadow the
// new schema. A connection opened before and still running sees, for a
// customer table it lacks a view for, the placeholder view below, which
// fails: never the table itself.

// customerVariable is the connection-local DuckDB variable the shadow views
// filter on. The check does not refuse getvariable(): reading it tells a
// statement its own customer, nothing more.
const customerVariable = "activitybi_customer"

const (
	setCustomer   = `SET VARIABLE ` + customerVariable + ` = ?`
	resetCustomer = `RESET VARIABLE ` + customerVariable
)

// customerTables maps every table a customer query may read to the column
// that names its customer. A table of the main schema that is not here is
// shadowed by an empty view and refused by the check: add a new table here
// (with its column) when it holds a customer's rows. stream_partitions has a
// customer column but is the loader's bookkeeping, not data: it stays out.
var customerTables = map[string]string{
	"claude_stream": "customer",
	"insight_atoms": "customer_id",
	"context_cache": "customer_id",
	"artifacts":     "customer_id",
	"query_tickets": "customer_id",
	"audit_log":     "customer_id",
}

func customerTableList() string {
	names := make([]string, 0, len(customerTables))
	for n := range customerTables {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// CustomerQuery runs one checked SELECT for one customer on a connection of
// the customer pool; see the comment at the top of this file.
//
// A bound time.Time compared with a TIMESTAMP column (ts >= ?) is compared
// as the UTC instant it is; an explicit ?::TIMESTAMP would convert it in the
// session's time zone, which follows the machine's.
func (db *DB) CustomerQuery(ctx context.Context, customer, q string, args []any, maxRows int) (*warehouse.Table, error) {
	done, err := db.reader()
	if err != nil {
		return nil, err
	}
	defer done()
	if err := checkCustomer(customer); err != nil {
		return nil, err
	}
	if maxRows < 0 {
		return nil, fmt.Errorf("customer query: maxRows must not be negative, got %d", maxRows)
	}
	ctx, cancel := context.WithTimeout(ctx, db.opts.QueryTimeout)
	defer cancel()
	conn, err := db.customerConn(ctx)
	if err != nil {
		return nil, fmt.Errorf("customer query: %w", err)
	}
	defer conn.Close()

	set := false
	t, err := db.readOnly(ctx, conn, readSpec{
		what: "customer query", q: q, args: args, maxRows: maxRows, mode: customerMode,
		setup: func() error {
			set = true
			if _, err := conn.ExecContext(ctx, setCustomer, customer); err != nil {
				return fmt.Errorf("set customer: %w", err)
			}
			return nil
		},
	})
	if set {
		// Unset whatever happened, so that an idle connection sees
		// nothing; if that fails, the connection is not reused.
		if _, rerr := conn.ExecContext(context.WithoutCancel(ctx), resetCustomer); rerr != nil {
			discard(conn)
		}
	}
	return t, err
}

// checkCustomer refuses a customer that no row can carry. The value is only
// ever bound, so this is about clear errors, not about escaping.
func checkCustomer(c string) error {
	switch {
	case c == "":
		return errors.New("customer query: customer is empty")
	case !utf8.ValidString(c):
		return errors.New("customer query: customer is not valid UTF-8")
	case strings.IndexByte(c, 0) >= 0:
		return errors.New("customer query: customer contains a NUL byte")
	}
	return nil
}

// customerConn takes a connection from the customer pool.
func (db *DB) customerConn(ctx context.Context) (*sql.Conn, error) {
	db.custMu.RLock()
	defer db.custMu.RUnlock()
	return db.cust.Conn(ctx)
}

// newCustomerPool returns a pool on the driver's database whose connections
// shadow the main schema when they open. Closing it leaves the database
// open (customerConnector has no Close).
func newCustomerPool(c *duckdb.Connector, size int) *sql.DB {
	p := sql.OpenDB(customerConnector{c})
	p.SetMaxOpenConns(size)
	p.SetMaxIdleConns(size)
	p.SetConnMaxIdleTime(0)
	p.SetConnMaxLifetime(0)
	return p
}

// renewCustomerPool replaces the customer pool after a migration. The old
// pool's connections close as their calls return them.
func (db *DB) renewCustomerPool() {
	db.custMu.Lock()
	old := db.cust
	db.cust = newCustomerPool(db.connector, poolConns(db.opts.Threads))
	db.custMu.Unlock()
	_ = old.Close()
}

// customerConnector opens connections of the customer pool. It must not
// implement io.Closer: sql.DB.Close would then close the shared database.
type customerConnector struct {
	c *duckdb.Connector
}

func (cc customerConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := cc.c.Connect(ctx)
	if err != nil {
		return nil, err
	}
	if err := shadowTables(ctx, conn); err != nil {
		conn.Close()
		return nil, fmt.Errorf("customer connection: %w", err)
	}
	return conn, nil
}

func (cc customerConnector) Driver() driver.Driver { return cc.c.Driver() }

// listMain names the tables and views of the main schema of this database.
const listMain = `SELECT current_database(), table_name FROM duckdb_tables()
WHERE database_name = current_database() AND schema_name = 'main' AND NOT temporary
UNION ALL
SELECT current_database(), view_name FROM duckdb_views()
WHERE database_name = current_database() AND schema_name = 'main' AND NOT temporary AND NOT internal`

// shadowTables creates the TEMP VIEWs of a customer connection.
func shadowTables(ctx context.Context, conn driver.Conn) error {
	qc, ok1 := conn.(driver.QueryerContext)
	ec, ok2 := conn.(driver.ExecerContext)
	if !ok1 || !ok2 {
		return fmt.Errorf("driver connection %T cannot run queries", conn)
	}
	rows, err := qc.QueryContext(ctx, listMain, nil)
	if err != nil {
		return fmt.Errorf("list tables: %w", err)
	}
	var catalog string
	var names []string
	dest := make([]driver.Value, 2)
	for {
		err := rows.Next(dest)
		if err == io.EOF {
			break
		}
		if err != nil {
			rows.Close()
			return fmt.Errorf("list tables: %w", err)
		}
		catalog, _ = dest[0].(string)
		name, _ := dest[1].(string)
		names = append(names, name)
	}
	rows.Close()
	script := shadowScript(catalog, names)
	if _, err := ec.ExecContext(ctx, script, nil); err != nil {
		return fmt.Errorf("create shadow views: %w", err)
	}
	return nil
}

// shadowScript is the SQL that shadows the named tables of the main schema
// of catalog, plus a failing placeholder for each customer table that does
// not exist (yet): a customer table's name must never reach anything but a
// filtered view.
func shadowScript(catalog string, names []string) string {
	var b strings.Builder
	seen := make(map[string]bool, len(names))
	for _, name := range names {
		l := strings.ToLower(name)
		seen[l] = true
		filter := "false"
		if col, ok := customerTables[l]; ok {
			filter = quoteIdent(col) + " = getvariable('" + customerVariable + "')"
		}
		fmt.Fprintf(&b, "CREATE OR REPLACE TEMP VIEW %s AS SELECT * FROM %s.main.%s WHERE %s;\n",
			quoteIdent(name), quoteIdent(catalog), quoteIdent(name), filter)
	}
	missing := make([]string, 0, len(customerTables))
	for name := range customerTables {
		if !seen[name] {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	for _, name := range missing {
		// error() in a WHERE clause runs for the one row of range(1),
		// whatever the statement selects.
		fmt.Fprintf(&b, "CREATE OR REPLACE TEMP VIEW %s AS SELECT * FROM range(1) WHERE error('table %s does not exist in this warehouse (is it migrated?)') IS NULL;\n",
			quoteIdent(name), name)
	}
	return b.String()
}

// quoteIdent quotes an SQL identifier.
func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// checkedCache remembers statements that passed the customer-mode check.
// Customer statements are our templates, a small fixed set, so a hit saves
// the parse on almost every call; analyst SQL is not cached. The verdict
// depends only on the text (the rules and customerTables are fixed), so a
// cached pass is as good as a fresh one.
type checkedCache struct {
	mu sync.Mutex
	ok map[string]struct{}
}

// checkedCacheSize bounds the cache; when full it starts over.
const checkedCacheSize = 1024

func (c *checkedCache) has(q string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.ok[q]
	return ok
}

func (c *checkedCache) add(q string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ok == nil || len(c.ok) >= checkedCacheSize {
		c.ok = make(map[string]struct{})
	}
	c.ok[q] = struct{}{}
}

// check runs checkSQL, through the cache in customer mode.
func (db *DB) check(ctx context.Context, conn *sql.Conn, q string, mode checkMode) error {
	if mode == customerMode && db.checked.has(q) {
		return nil
	}
	err := checkSQL(ctx, conn, q, mode)
	if err == nil && mode == customerMode {
		db.checked.add(q)
	}
	return err
}
