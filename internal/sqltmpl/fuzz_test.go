package sqltmpl

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// FuzzRender feeds arbitrary parameter objects to every template. Render
// never panics; it refuses with an error wrapping ErrInvalidParams, or it
// returns one statement whose placeholders match its arguments, whose
// arguments have the allowed types, and whose normalized parameters render
// to the same statement again (they are canonical).
func FuzzRender(f *testing.F) {
	for _, s := range []string{
		``, `null`, `{}`, `[]`, `"x"`, `{"days": 7}`, `{"days": 0}`, `{"days": 1e400}`, `{"days": -1}`,
		`{"from": "2026-03-01", "to": "2026-03-02"}`, `{"from": "2026-03-01T00:00:00.999999999+14:00"}`,
		`{"bucket": "hour", "days": 208}`, `{"by": "server", "tool": "Bash"}`, `{"tool": "' OR 1=1 --"}`,
		`{"tool": "\u0000"}`, `{"slower_than": "1d"}`, `{"slower_than": 0.25}`, `{"slower_than": "-1s"}`,
		`{"metric": "p95_latency_ms", "agg": "last"}`, `{"limit": 1.0}`, `{"limit": "1"}`, `{"days": 7, "days": 8}`,
		`{"x": {"y": [1, 2, {"z": null}]}}`, `{"tool": null, "server": ""}`, `{"days": 7} x`,
	} {
		for i := 0; i < 3; i++ {
			f.Add(uint8(i*7), s)
		}
	}
	lib := Default()
	list := lib.List()
	now := time.Date(2026, 3, 31, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, which uint8, params string) {
		tp := list[int(which)%len(list)]
		d := Dialects[int(which)/len(list)%len(Dialects)]
		r, err := lib.Render(tp.Name, json.RawMessage(params), d, now)
		if err != nil {
			if !errors.Is(err, ErrInvalidParams) {
				t.Fatalf("%s %q: error does not wrap ErrInvalidParams: %v", tp.Name, params, err)
			}
			if len(err.Error()) > 4*MaxParamsBytes {
				t.Fatalf("%s: a %d-byte error", tp.Name, len(err.Error()))
			}
			return
		}
		checkRendered(t, r)
		again, err := json.Marshal(r.Params)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := lib.Render(tp.Name, again, d, now)
		if err != nil {
			t.Fatalf("%s: normalized params %s do not render: %v", tp.Name, again, err)
		}
		if r2.SQL != r.SQL || !reflect.DeepEqual(r2.Args, r.Args) || !reflect.DeepEqual(r2.Params, r.Params) {
			t.Fatalf("%s: %q and its normalized form %s render differently", tp.Name, params, again)
		}
	})
}

// checkRendered: one ? per argument, arguments of the allowed types only.
func checkRendered(t *testing.T, r *Rendered) {
	t.Helper()
	if n := strings.Count(r.SQL, "?"); n != len(r.Args) {
		t.Fatalf("%s: %d placeholders, %d args", r.Template, n, len(r.Args))
	}
	for i, a := range r.Args {
		switch a.(type) {
		case string, int64, float64, bool, time.Time:
		default:
			t.Fatalf("%s: arg %d is %T", r.Template, i, a)
		}
	}
}

// The same holds for every template's defaults (no fuzzing needed).
func TestRenderedShape(t *testing.T) {
	t.Parallel()
	for _, tp := range Default().List() {
		for _, d := range Dialects {
			r, err := Default().Render(tp.Name, json.RawMessage(baseParams[tp.Name]), d, fxNow)
			if err != nil {
				t.Fatal(err)
			}
			checkRendered(t, r)
			if strings.Contains(r.SQL, "$") || strings.Contains(r.SQL, "SLOT") {
				t.Errorf("%s %s: template syntax left in the SQL", tp.Name, d)
			}
		}
	}
}
