package duckdb

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/duckdb/duckdb-go/v2"
)

// A load's rows reach claude_stream through a table function that reads
// them from Go, one DuckDB data chunk (2,048 rows) at a time:
//
//	INSERT INTO claude_stream (...) SELECT ... FROM activitybi_load_rows('<nonce>')
//
// The query appender it replaced copied every row twice before the INSERT
// saw it: boxed into driver.Values by AppendRow, then from its chunk into a
// buffered collection that the INSERT scanned afterwards. The table
// function writes each value once, straight into the chunk the INSERT
// reads, and the INSERT runs while the chunks are filled. In
// BenchmarkLoad that is 20-30% more rows a second (bench/warehouse.md,
// "Rows through a table function").
//
// The function is registered in the database's catalog, so every
// connection of this DuckDB instance could name it. Two things keep it the
// loader's own:
//
//   - customer and analyst SQL may call only the table functions in
//     allowedTableFunctions (safesql.go), which does not list it;
//   - it returns rows only when called with the nonce of the load in
//     progress, which Load makes fresh (128 random bits) for each INSERT
//     and which the first bind consumes. Any other call is an error and
//     returns nothing.

// loadRowsFunc is the table function's name.
const loadRowsFunc = "activitybi_load_rows"

// loadRowsSlot hands one load's rows to the table function's bind.
type loadRowsSlot struct {
	mu    sync.Mutex
	nonce string
	rows  []stageRow
}

// offer makes rows available to the next bind with the returned nonce.
func (s *loadRowsSlot) offer(rows []stageRow) (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	nonce := hex.EncodeToString(b[:])
	s.mu.Lock()
	s.nonce, s.rows = nonce, rows
	s.mu.Unlock()
	return nonce, nil
}

// take returns the offered rows if nonce is the offer's, and empties the
// slot either way a matching call goes.
func (s *loadRowsSlot) take(nonce string) ([]stageRow, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.nonce == "" || nonce != s.nonce {
		return nil, fmt.Errorf("%s is internal to the warehouse's loader", loadRowsFunc)
	}
	rows := s.rows
	s.nonce, s.rows = "", nil
	return rows, nil
}

// clear empties the slot (after the INSERT, whether or not it bound).
func (s *loadRowsSlot) clear() {
	s.mu.Lock()
	s.nonce, s.rows = "", nil
	s.mu.Unlock()
}

// rowsSource is one bind of the table function: the rows of one load.
type rowsSource struct {
	rows []stageRow
	pos  int
	cols []duckdb.ColumnInfo
}

func (s *rowsSource) ColumnInfos() []duckdb.ColumnInfo { return s.cols }

func (s *rowsSource) Cardinality() *duckdb.CardinalityInfo {
	return &duckdb.CardinalityInfo{Cardinality: uint(len(s.rows)), Exact: true}
}

func (s *rowsSource) Init() {}

// FillChunk writes the next rows into ch, in appendColumns' order; a chunk
// of size 0 ends the scan.
func (s *rowsSource) FillChunk(ch duckdb.DataChunk) error {
	n := min(duckdb.GetDataChunkCapacity(), len(s.rows)-s.pos)
	for j := 0; j < n; j++ {
		if err := fillRow(&ch, j, &s.rows[s.pos+j]); err != nil {
			return fmt.Errorf("row %d: %w", s.pos+j, err)
		}
	}
	s.pos += n
	return ch.SetSize(n)
}

func fillRow(ch *duckdb.DataChunk, j int, r *stageRow) error {
	e := r.ev
	f := e.Features
	if len(f) == 0 {
		f = []byte("{}")
	}
	errs := [12]error{
		duckdb.SetChunkValue(*ch, 0, j, e.ActivityID),
		duckdb.SetChunkValue(*ch, 1, j, e.TS),
		duckdb.SetChunkValue(*ch, 2, j, e.Customer),
		duckdb.SetChunkValue(*ch, 3, j, e.Activity),
		setOptString(ch, 4, j, e.AnonymousCustomerID),
		duckdb.SetChunkValue(*ch, 5, j, string(f)),
		nil, // revenue_impact
		setOptString(ch, 7, j, e.Link),
		nil, // occ
		nil, // rep
		duckdb.SetChunkValue(*ch, 10, j, e.ReceivedAt),
		duckdb.SetChunkValue(*ch, 11, j, e.Source),
	}
	if e.RevenueImpact != nil {
		errs[6] = duckdb.SetChunkValue(*ch, 6, j, *e.RevenueImpact)
	} else {
		errs[6] = ch.SetValue(6, j, nil)
	}
	if r.occ > 0 {
		errs[8] = duckdb.SetChunkValue(*ch, 8, j, r.occ)
	} else {
		errs[8] = ch.SetValue(8, j, nil)
	}
	if r.rep.IsZero() {
		errs[9] = ch.SetValue(9, j, nil)
	} else {
		errs[9] = duckdb.SetChunkValue(*ch, 9, j, r.rep)
	}
	return errors.Join(errs[:]...)
}

// setOptString writes s, or NULL for "".
func setOptString(ch *duckdb.DataChunk, col, j int, s string) error {
	if s == "" {
		return ch.SetValue(col, j, nil)
	}
	return duckdb.SetChunkValue(*ch, col, j, s)
}

// registerLoadRows registers the table function in the database's catalog,
// once per database; a catalog that already has it is fine. It must run
// outside a transaction: the registration is a catalog change, and a
// rolled-back load would take it away.
func (db *DB) registerLoadRows(conn *sql.Conn) error {
	if db.loadRowsRegistered {
		return nil
	}
	types, err := appendTypes()
	if err != nil {
		return err
	}
	cols := make([]duckdb.ColumnInfo, len(types))
	for i := range types {
		cols[i] = duckdb.ColumnInfo{Name: appendColumns[i], T: types[i]}
	}
	varchar, err := duckdb.NewTypeInfo(duckdb.TYPE_VARCHAR)
	if err != nil {
		return err
	}
	err = duckdb.RegisterTableUDF(conn, loadRowsFunc, duckdb.ChunkTableFunction{
		Config: duckdb.TableFunctionConfig{Arguments: []duckdb.TypeInfo{varchar}},
		BindArguments: func(_ map[string]any, args ...any) (duckdb.ChunkTableSource, error) {
			nonce, _ := args[0].(string)
			rows, err := db.loadRows.take(nonce)
			if err != nil {
				return nil, err
			}
			return &rowsSource{rows: rows, cols: cols}, nil
		},
	})
	if err != nil && !strings.Contains(err.Error(), "already exists") {
		return fmt.Errorf("register %s: %w", loadRowsFunc, err)
	}
	db.loadRowsRegistered = true
	return nil
}

// insertQuery inserts the rows of one load (see the top of this file).
// The nonce is 32 hex digits made here, never input, so it is written into
// the statement as a literal.
const insertQuery = `INSERT INTO claude_stream (activity_id, ts, customer, activity,
    anonymous_customer_id, feature_json, revenue_impact, link,
    _activity_occurrence, _activity_repeated_at, _received_at, _source)
SELECT activity_id, ts, customer, activity, anonymous_customer_id,
    feature_json::JSON, revenue_impact, link, occ, rep, received_at, source
FROM ` + loadRowsFunc + `('%s')`

// insertRows inserts rows into claude_stream in the current transaction.
// A row whose key is already stored fails the insert (the primary-key index
// checks every row), as does a feature_json that is not JSON.
func (db *DB) insertRows(ctx context.Context, conn *sql.Conn, rows []stageRow) error {
	nonce, err := db.loadRows.offer(rows)
	if err != nil {
		return err
	}
	defer db.loadRows.clear()
	_, err = conn.ExecContext(ctx, fmt.Sprintf(insertQuery, nonce))
	return err
}
