package sqltmpl

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Rendered SQL of every template in both dialects, with its default
// parameters (and baseParams), its arguments and every slot's fragments, is kept in testdata/golden/<template>.<dialect>.sql (go test -update
// rewrites them). A change to a template or to rendering shows up there as
// a diff to review.
func TestGoldenSQL(t *testing.T) {
	t.Parallel()
	lib := Default()
	want := map[string]bool{}
	for _, tp := range lib.List() {
		for _, d := range Dialects {
			name := tp.Name + "." + string(d) + ".sql"
			want[name] = true
			r, err := lib.Render(tp.Name, json.RawMessage(baseParams[tp.Name]), d, fxNow)
			if err != nil {
				t.Fatalf("%s %s: %v", tp.Name, d, err)
			}
			got := goldenText(tp, d, r)
			path := filepath.Join("testdata", "golden", name)
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if string(b) != got {
				t.Errorf("%s differs from the golden file (go test -update rewrites it):\n%s", path, got)
			}
		}
	}
	// No golden file of a template that is gone.
	files, _ := filepath.Glob(filepath.Join("testdata", "golden", "*.sql"))
	for _, f := range files {
		if !want[filepath.Base(f)] {
			t.Errorf("%s belongs to no template; delete it", f)
		}
	}
}

func goldenText(tp *Template, d Dialect, r *Rendered) string {
	var b strings.Builder
	params, _ := json.Marshal(r.Params)
	fmt.Fprintf(&b, "-- %s, %s, rendered at %s\n", tp.Name, d, fxNow.Format(time.RFC3339))
	fmt.Fprintf(&b, "-- params: %s\n", params)
	for i, a := range r.Args {
		fmt.Fprintf(&b, "-- arg %d: %s\n", i+1, goldenArg(a))
	}
	for _, p := range tp.Params {
		for _, v := range p.Values {
			if f, ok := p.fragments[d][v]; ok {
				fmt.Fprintf(&b, "-- slot %s=%s: %s\n", p.Name, v, f)
			}
		}
	}
	b.WriteString(r.SQL)
	b.WriteString("\n")
	return b.String()
}

func goldenArg(a any) string {
	switch a := a.(type) {
	case time.Time:
		return "time.Time " + a.Format(time.RFC3339Nano)
	case string:
		return fmt.Sprintf("string %q", a)
	default:
		return fmt.Sprintf("%T %v", a, a)
	}
}
