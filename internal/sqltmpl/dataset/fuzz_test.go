package dataset

import (
	"bytes"
	"errors"
	"regexp"
	"strings"
	"testing"
)

var plainColumn = regexp.MustCompile(`^[A-Za-z0-9_]+$`)

// FuzzDecode: Decode never panics; what it refuses is a *SpecError with a
// one-line message; what it accepts is canonical (decoding the canonical
// form gives it back) and compiles in both dialects to a statement with no
// string literal, no statement separator, one argument per placeholder and
// plain column names.
func FuzzDecode(f *testing.F) {
	for _, g := range goldenSpecs {
		f.Add([]byte(g.spec))
	}
	for _, s := range []string{
		``, `{}`, `null`, `[[[[[[[[[[]]]]]]]]]]`,
		`{"cohort":{"activity":"submitted_prompt","filters":[{"feature":"m","op":"in","value":["'; DROP TABLE x; --",1]}]}}`,
		`{"cohort":{"activity":"a_b","from":"2026-01-01T00:00:00.999999999+14:00","to":"9999-12-31T23:59:59Z"},"limit":100000}`,
		`{"cohort":{"activity":"a_b"},"append":[{"activity":"a_b","relationship":"aggregate_all_ever","aggregate":"avg","of":"revenue_impact","as":"A"},{"activity":"a_b","relationship":"last_ever","features":["a","link"],"as":"a"}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		s, err := Decode(raw)
		if err != nil {
			var se *SpecError
			if !errors.As(err, &se) || !errors.Is(err, ErrInvalidSpec) || len(se.Problems) == 0 {
				t.Fatalf("error %v (%T) is not a *SpecError with problems", err, err)
			}
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Fatalf("multi-line message %q", err)
			}
			return
		}
		canon := s.Canonical()
		again, err := Decode(canon)
		if err != nil {
			t.Fatalf("canonical form %s does not decode: %v", canon, err)
		}
		if c2 := again.Canonical(); !bytes.Equal(c2, canon) {
			t.Fatalf("canonical form is not stable:\n%s\n%s", canon, c2)
		}
		for _, d := range []string{DialectDuckDB, DialectSnowflake} {
			c, err := Compile(s, d)
			if err != nil {
				t.Fatalf("accepted spec %s does not compile: %v", canon, err)
			}
			if strings.ContainsAny(c.SQL, "';") {
				t.Fatalf("statement has a literal or separator:\n%s", c.SQL)
			}
			if n := strings.Count(c.SQL, "?"); n != len(c.Args) {
				t.Fatalf("%d placeholders, %d args", n, len(c.Args))
			}
			for _, col := range c.Columns {
				if !plainColumn.MatchString(col) || !strings.Contains(c.SQL, `"`+col+`"`) {
					t.Fatalf("column %q", col)
				}
			}
		}
	})
}
