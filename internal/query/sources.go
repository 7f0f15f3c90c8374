package query

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/activitybi/activitybi/internal/sqltmpl"
	"github.com/activitybi/activitybi/internal/sqltmpl/dataset"
)

// SafeSQL is the Compiler of the product: a request names a SafeSQL
// template (with its typed params) or carries an ActivitySchema dataset
// spec, and comes out as one bound statement in dialect d. Nothing of the
// request's text becomes SQL: template params and dataset values are bound,
// identifiers come from allow-lists.
//
// The key (the query hash's input) is the template's name and normalized
// params, or the canonical dataset spec: two requests that ask the same
// question in different spellings (a default left out, keys reordered) get
// the same hash.
//
// m, when not nil, counts refused dataset specs and the limits they hit
// (activitybi_dataset_*).
func SafeSQL(lib *sqltmpl.Library, d sqltmpl.Dialect, m *dataset.Metrics) Compiler {
	return func(req Request, now time.Time) (*Compiled, error) {
		switch {
		case req.Template != "" && len(req.Dataset) > 0:
			return nil, fmt.Errorf("%w: give a template or a dataset spec, not both", ErrInvalidRequest)
		case req.Template != "":
			r, err := lib.Render(req.Template, req.Params, d, now)
			if err != nil {
				if errors.Is(err, sqltmpl.ErrInvalidParams) || errors.Is(err, sqltmpl.ErrUnknownTemplate) {
					return nil, fmt.Errorf("%w: %w", ErrInvalidRequest, err)
				}
				return nil, err
			}
			key, err := json.Marshal(struct {
				Template string         `json:"template"`
				Params   map[string]any `json:"params"`
			}{r.Template, r.Params})
			if err != nil {
				return nil, fmt.Errorf("query key: %w", err)
			}
			cols := make([]string, len(r.Columns))
			for i, c := range r.Columns {
				cols[i] = c.Name
			}
			return &Compiled{SQL: r.SQL, Args: r.Args, Timeout: r.Timeout, Key: key, Name: r.Template, Columns: cols}, nil
		case len(req.Dataset) > 0:
			if len(req.Params) > 0 && string(req.Params) != "null" {
				return nil, fmt.Errorf("%w: params go with a template; a dataset spec carries its own values", ErrInvalidRequest)
			}
			spec, err := dataset.Decode(req.Dataset)
			if err != nil {
				m.Observe(err)
				return nil, fmt.Errorf("%w: %w", ErrInvalidRequest, err)
			}
			c, err := dataset.Compile(spec, string(d))
			if err != nil {
				m.Observe(err)
				if errors.Is(err, dataset.ErrInvalidSpec) {
					return nil, fmt.Errorf("%w: %w", ErrInvalidRequest, err)
				}
				return nil, err
			}
			key := append([]byte(`{"dataset":`), spec.Canonical()...)
			key = append(key, '}')
			return &Compiled{SQL: c.SQL, Args: c.Args, Key: key, Name: "dataset", Columns: c.Columns}, nil
		}
		return nil, fmt.Errorf("%w: give a template (see list_templates) or a dataset spec", ErrInvalidRequest)
	}
}
