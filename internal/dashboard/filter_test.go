package dashboard

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestParseFilter(t *testing.T) {
	t.Parallel()
	day := func(s string) time.Time { d, _ := time.Parse(time.DateOnly, s); return d }
	cases := []struct {
		query    string
		from, to time.Time
		preset   string
		bucket   string
		scope    string
	}{
		{"", fxNow.Add(-7 * 24 * time.Hour), fxNow, "7d", BucketDay, ""},
		{"range=24h", fxNow.Add(-24 * time.Hour), fxNow, "24h", BucketHour, ""},
		{"range=90d&scope=billing", fxNow.Add(-90 * 24 * time.Hour), fxNow, "90d", BucketDay, "billing"},
		// A day as to includes that whole day.
		{"from=2026-03-01&to=2026-03-01", day("2026-03-01"), day("2026-03-02"), "", BucketHour, ""},
		{"from=2026-03-01", day("2026-03-01"), fxNow, "", BucketDay, ""},
		{"from=2025-04-01&to=2026-03-31", day("2025-04-01"), day("2026-04-01"), "", BucketWeek, ""},
		// RFC 3339 in another zone is converted to UTC; to is excluded.
		{"from=2026-03-30T11:00:00%2B02:00&to=2026-03-30T10:00:00Z", time.Date(2026, 3, 30, 9, 0, 0, 0, time.UTC),
			time.Date(2026, 3, 30, 10, 0, 0, 0, time.UTC), "", BucketHour, ""},
		// An empty range (the form's "custom dates") lets from/to apply;
		// surrounding spaces are trimmed.
		{"range=&from=2026-03-01&to=2026-03-07&scope=+web+", day("2026-03-01"), day("2026-03-08"), "", BucketDay, "web"},
		// Exactly MaxRange is accepted.
		{"from=2025-03-30&to=2026-03-30", day("2025-03-30"), day("2026-03-31"), "", BucketWeek, ""},
	}
	for _, c := range cases {
		q, _ := url.ParseQuery(c.query)
		f, err := ParseFilter(q, fxNow)
		if err != nil {
			t.Errorf("%q: %v", c.query, err)
			continue
		}
		if !f.From.Equal(c.from) || !f.To.Equal(c.to) || f.Preset != c.preset || f.Bucket != c.bucket || f.Scope != c.scope {
			t.Errorf("%q: got %s..%s preset %q bucket %s scope %q; want %s..%s %q %s %q", c.query,
				f.From, f.To, f.Preset, f.Bucket, f.Scope, c.from, c.to, c.preset, c.bucket, c.scope)
		}
	}
	// Every problem is reported at once.
	q, _ := url.ParseQuery("range=2w&scope=%00&customer=bob")
	_, err := ParseFilter(q, fxNow)
	var fe *FilterError
	if !errors.As(err, &fe) || len(fe.Problems) != 3 {
		t.Fatalf("want 3 problems, got %v", err)
	}
}

func TestTruncBucketMatchesDateTrunc(t *testing.T) {
	t.Parallel()
	// DuckDB's date_trunc('week') starts weeks on Monday; 2026-03-29 is a
	// Sunday, 2026-03-23 the Monday before.
	ts := time.Date(2026, 3, 29, 17, 45, 0, 0, time.UTC)
	for b, want := range map[string]time.Time{
		BucketHour: time.Date(2026, 3, 29, 17, 0, 0, 0, time.UTC),
		BucketDay:  time.Date(2026, 3, 29, 0, 0, 0, 0, time.UTC),
		BucketWeek: time.Date(2026, 3, 23, 0, 0, 0, 0, time.UTC),
	} {
		if got := truncBucket(b, ts); !got.Equal(want) {
			t.Errorf("%s: %s, want %s", b, got, want)
		}
	}
}

// FuzzParseFilter: any address either gives a filter that holds the
// limits and survives a round trip through Query, or a FilterError with
// at least one problem, each naming its parameter.
func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{"", "range=24h", "range=7d&scope=billing", "from=2026-03-01&to=2026-03-02",
		"from=2026-03-01T10:00:00Z", "from=2026-03-10&to=2026-03-01", "range=1y", "customer=x", "scope=%00",
		"from=1969-12-31", "from=9999-12-31", "range=&from=2026-01-01", "from=2026-03-01T10:00:00.123456789%2B05:30",
		"scope=" + strings.Repeat("é", 256), "range=7d&range=7d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		flt, err := ParseFilter(q, fxNow)
		if err != nil {
			var fe *FilterError
			if !errors.As(err, &fe) || len(fe.Problems) == 0 {
				t.Fatalf("%q: error %v is not a FilterError with problems", raw, err)
			}
			for _, p := range fe.Problems {
				if !strings.Contains(p, ": ") || !utf8.ValidString(p) {
					t.Fatalf("%q: problem %q does not name its parameter", raw, p)
				}
			}
			return
		}
		switch {
		case !flt.From.Before(flt.To):
			t.Fatalf("%q: empty range %s..%s", raw, flt.From, flt.To)
		case flt.To.Sub(flt.From) > MaxRange:
			t.Fatalf("%q: range %s over MaxRange", raw, flt.To.Sub(flt.From))
		case flt.From.Before(minBound):
			t.Fatalf("%q: from %s before 1970", raw, flt.From)
		case checkScope(flt.Scope) != nil:
			t.Fatalf("%q: scope %q accepted: %v", raw, flt.Scope, checkScope(flt.Scope))
		case flt.Bucket != bucketFor(flt.To.Sub(flt.From)):
			t.Fatalf("%q: bucket %s", raw, flt.Bucket)
		}
		again, err := ParseFilter(flt.Query(), fxNow)
		if err != nil || !again.From.Equal(flt.From) || !again.To.Equal(flt.To) || again.Scope != flt.Scope || again.Preset != flt.Preset {
			t.Fatalf("%q: round trip through %q gives %+v, %v; want %+v", raw, flt.Query().Encode(), again, err, flt)
		}
	})
}
