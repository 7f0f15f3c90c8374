package query

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/activitybi/activitybi/internal/sqltmpl"
	"github.com/activitybi/activitybi/internal/sqltmpl/dataset"
)

// TestSafeSQL: a template and a dataset compile to bound statements with
// the question as the key; a refused dataset spec is an invalid request and
// is counted with the limits it hit.
func TestSafeSQL(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m, err := dataset.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	compile := SafeSQL(sqltmpl.Default(), sqltmpl.DuckDB, m)

	c, err := compile(Request{Template: "top_activities", Params: json.RawMessage(`{"limit": 5}`)}, t0)
	if err != nil || c.Name != "top_activities" || !strings.Contains(string(c.Key), `"limit":5`) || len(c.Args) == 0 {
		t.Fatalf("template: %+v %v", c, err)
	}
	if _, err := compile(Request{Template: "no_such"}, t0); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("unknown template: %v", err)
	}
	d, err := compile(Request{Dataset: json.RawMessage(`{"cohort": {"activity": "started_session"}}`)}, t0)
	if err != nil || d.Name != "dataset" || !strings.HasPrefix(string(d.Key), `{"dataset":`) {
		t.Fatalf("dataset: %+v %v", d, err)
	}

	var appends []string
	for i := 0; i <= dataset.MaxAppends; i++ {
		appends = append(appends, fmt.Sprintf(`{"activity": "called_tool", "relationship": "first_after", "as": "a%d"}`, i))
	}
	spec := `{"cohort": {"activity": "started_session"}, "append": [` + strings.Join(appends, ",") + `]}`
	if _, err := compile(Request{Dataset: json.RawMessage(spec)}, t0); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("a spec over MaxAppends: %v", err)
	}
	if _, err := compile(Request{Dataset: json.RawMessage(`{"cohort": {}}`)}, t0); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("a spec without a cohort activity: %v", err)
	}
	refused, _ := reg.Gather()
	var gotRefused, gotLimit float64
	for _, f := range refused {
		for _, x := range f.GetMetric() {
			switch f.GetName() {
			case "activitybi_dataset_specs_refused_total":
				gotRefused = x.GetCounter().GetValue()
			case "activitybi_dataset_limit_hits_total":
				for _, l := range x.GetLabel() {
					if l.GetValue() == "MaxAppends" {
						gotLimit = x.GetCounter().GetValue()
					}
				}
			}
		}
	}
	if gotRefused != 2 || gotLimit != 1 {
		t.Errorf("refused %v (want 2), MaxAppends hits %v (want 1)", gotRefused, gotLimit)
	}
}
