package server

import (
	"encoding/json"
	"time"

	"github.com/activitybi/activitybi/internal/warehouse"
)

// TimeLayout prints warehouse timestamps (UTC, microseconds, no zone), the
// way analysts see them in DuckDB and Snowflake.
const TimeLayout = "2006-01-02 15:04:05.999999"

// WireTable is a warehouse.Table as JSON: times as strings in TimeLayout,
// everything else as its JSON value.
type WireTable struct {
	Columns   []warehouse.Column `json:"columns"`
	Rows      [][]any            `json:"rows"`
	Truncated bool               `json:"truncated"`
}

// EncodeTable converts t for the wire (and for printing: the CLI prints the
// same form whether it asked the core or opened the warehouse itself).
func EncodeTable(t *warehouse.Table) *WireTable {
	wt := &WireTable{Columns: t.Columns, Rows: make([][]any, len(t.Rows)), Truncated: t.Truncated}
	if wt.Columns == nil {
		wt.Columns = []warehouse.Column{}
	}
	for i, row := range t.Rows {
		out := make([]any, len(row))
		for j, v := range row {
			out[j] = wireValue(v)
		}
		wt.Rows[i] = out
	}
	return wt
}

func wireValue(v any) any {
	switch x := v.(type) {
	case time.Time:
		return x.UTC().Format(TimeLayout)
	case []byte:
		return string(x)
	case json.RawMessage:
		return x
	}
	return v
}
