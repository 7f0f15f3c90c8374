package dashboard

import (
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Filter limits. They bound what one page view may ask the warehouse for.
const (
	// DefaultPreset is the range a page shows when the address names none.
	DefaultPreset = "7d"
	// MaxRange is the longest from/to span a page accepts: a year and a
	// day, enough for a year-over-year look, and at most 53 weekly buckets.
	MaxRange = 366 * 24 * time.Hour
	// MaxScopeLen is the longest scope (project) in characters, the
	// warehouse's limit for a string feature (event.MaxStringLen).
	MaxScopeLen = 255
	// maxParamLen bounds any one filter value before it is parsed, so a
	// huge value costs nothing but the refusal.
	maxParamLen = 1024
)

// Buckets: the time resolution of charts, chosen from the span so that a
// chart has at most about 120 points.
const (
	BucketHour = "hour"
	BucketDay  = "day"
	BucketWeek = "week"
	// hourlyUpTo and dailyUpTo are the longest spans drawn by the hour and
	// by the day.
	hourlyUpTo = 48 * time.Hour
	dailyUpTo  = 120 * 24 * time.Hour
)

// presets are the named ranges, ending now.
var presets = []struct {
	Name  string
	Label string
	Span  time.Duration
}{
	{"24h", "Last 24 hours", 24 * time.Hour},
	{"7d", "Last 7 days", 7 * 24 * time.Hour},
	{"30d", "Last 30 days", 30 * 24 * time.Hour},
	{"90d", "Last 90 days", 90 * 24 * time.Hour},
}

// presetNames lists the accepted range values for error messages.
func presetNames() string {
	names := make([]string, len(presets))
	for i, p := range presets {
		names[i] = p.Name
	}
	return strings.Join(names, ", ")
}

// Filter is what a page shows: events with From <= ts < To (UTC), of one
// scope (project) or of all. It is parsed from the address, never from
// anything else, and never names a customer.
type Filter struct {
	// Preset is the named range (24h, 7d, 30d, 90d), "" for from/to.
	Preset string
	From   time.Time
	To     time.Time
	// Scope narrows events to one project; "" is every project.
	Scope string
	// Bucket is the chart resolution for the span: hour, day or week.
	Bucket string
	// Raw keeps the values as given, to refill the form.
	RawFrom, RawTo string
}

// FilterError lists every problem of a page address at once, each naming
// the parameter, what was given and what is accepted.
type FilterError struct {
	Problems []string
	// LimitHit names the limit a problem came from ("range"), for the
	// dashboard's limit counter; "" when none.
	LimitHit string
}

func (e *FilterError) Error() string {
	return "bad filter: " + strings.Join(e.Problems, "; ")
}

// ParseFilter reads range, from, to and scope from q. range is one of 24h,
// 7d, 30d, 90d (default 7d) and ends at now. from and to are a day
// (YYYY-MM-DD, UTC; to includes its whole day) or an RFC 3339 time (to
// excluded); from alone runs to now; from/to replace range. scope is a
// project name. A customer cannot be named: it always comes from the login.
func ParseFilter(q url.Values, now time.Time) (Filter, error) {
	now = now.UTC()
	fe := &FilterError{}
	bad := func(format string, a ...any) { fe.Problems = append(fe.Problems, fmt.Sprintf(format, a...)) }
	get := func(name string) string {
		vs := q[name]
		if len(vs) > 1 {
			bad("%s: given %d times; give it once", name, len(vs))
		}
		if len(vs) == 0 {
			return ""
		}
		v := strings.TrimSpace(vs[0])
		if len(v) > maxParamLen {
			bad("%s: %d bytes long; at most %d", name, len(v), maxParamLen)
			return ""
		}
		return v
	}
	for _, k := range []string{"customer", "customer_id"} {
		if q.Has(k) {
			bad("%s: a page cannot name a customer; it shows the customer you are signed in as", k)
		}
	}
	f := Filter{}
	rng, from, to := get("range"), get("from"), get("to")
	f.RawFrom, f.RawTo = from, to
	f.Scope = get("scope")
	if err := checkScope(f.Scope); err != nil {
		bad("scope: %v", err)
	}

	switch {
	case rng != "" && (from != "" || to != ""):
		bad("range: %q cannot be combined with from/to; give either a range (%s) or from and to (in the form: choose Custom dates, or clear from and to)", rng, presetNames())
	case from == "" && to != "":
		bad("to: %q needs a from (YYYY-MM-DD or an RFC 3339 time)", clipValue(to))
	case from != "":
		ft, err := parseBound(from, false)
		if err != nil {
			bad("from: %v", err)
		}
		tt := now
		if to != "" {
			if tt, err = parseBound(to, true); err != nil {
				bad("to: %v", err)
			}
		}
		if len(fe.Problems) == 0 {
			switch {
			case !ft.Before(tt):
				shownTo := to
				if shownTo == "" {
					shownTo = "now"
				}
				bad("from: %q is not before to %q; the range must not be empty (a day as to includes that whole day)", clipValue(from), clipValue(shownTo))
			case tt.Sub(ft) > MaxRange:
				bad("from/to: the range spans %s; at most %d days are shown at once (narrow it, or use a preset: %s)",
					spanText(tt.Sub(ft)), int(MaxRange/(24*time.Hour)), presetNames())
				fe.LimitHit = "range"
			}
		}
		f.From, f.To = ft, tt
	default:
		if rng == "" {
			rng = DefaultPreset
		}
		found := false
		for _, p := range presets {
			if p.Name == rng {
				f.Preset, f.From, f.To, found = p.Name, now.Add(-p.Span), now, true
			}
		}
		if !found {
			bad("range: %q is not a range; use one of %s, or from and to", clipValue(rng), presetNames())
		}
	}
	if len(fe.Problems) > 0 {
		return f, fe
	}
	f.Bucket = bucketFor(f.To.Sub(f.From))
	return f, nil
}

// minBound rejects times before the warehouse's earliest accepted ts.
var minBound = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)

// maxBound keeps times where every driver can represent them.
var maxBound = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

// parseBound parses a day (YYYY-MM-DD, UTC) or an RFC 3339 time. A day as
// an upper bound means the end of that day.
func parseBound(s string, upper bool) (time.Time, error) {
	var t time.Time
	if d, err := time.Parse(time.DateOnly, s); err == nil {
		t = d
		if upper {
			t = t.Add(24 * time.Hour)
		}
	} else if ts, err2 := time.Parse(time.RFC3339Nano, s); err2 == nil {
		t = ts.UTC()
	} else {
		return time.Time{}, fmt.Errorf("%q is not a day (YYYY-MM-DD, e.g. 2026-03-01) or an RFC 3339 time (e.g. 2026-03-01T09:00:00Z)", clipValue(s))
	}
	if t.Before(minBound) || t.After(maxBound) {
		return time.Time{}, fmt.Errorf("%q is outside 1970-01-01 to 9999-01-01", clipValue(s))
	}
	// The warehouse stores microseconds.
	return t.Truncate(time.Microsecond), nil
}

// checkScope accepts what a project feature can hold.
func checkScope(s string) error {
	if s == "" {
		return nil
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("not valid UTF-8")
	}
	if n := utf8.RuneCountInString(s); n > MaxScopeLen {
		return fmt.Errorf("%d characters long; a project name has at most %d", n, MaxScopeLen)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return fmt.Errorf("%q contains a control character; a project name is one line of text", clipValue(s))
		}
	}
	return nil
}

// bucketFor picks the chart resolution for a span.
func bucketFor(span time.Duration) string {
	switch {
	case span <= hourlyUpTo:
		return BucketHour
	case span <= dailyUpTo:
		return BucketDay
	}
	return BucketWeek
}

// bucketStep is the length of one bucket; weeks start on Monday (DuckDB's
// date_trunc('week')).
func bucketStep(b string) time.Duration {
	switch b {
	case BucketHour:
		return time.Hour
	case BucketWeek:
		return 7 * 24 * time.Hour
	}
	return 24 * time.Hour
}

// truncBucket is date_trunc(b, t) in Go.
func truncBucket(b string, t time.Time) time.Time {
	t = t.UTC()
	switch b {
	case BucketHour:
		return t.Truncate(time.Hour)
	case BucketWeek:
		d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
		back := (int(d.Weekday()) + 6) % 7 // days since Monday
		return d.AddDate(0, 0, -back)
	}
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// Label describes the range for a heading.
func (f Filter) Label() string {
	for _, p := range presets {
		if p.Name == f.Preset {
			return p.Label
		}
	}
	return f.From.Format("2006-01-02 15:04") + " to " + f.To.Format("2006-01-02 15:04") + " UTC"
}

// Query is the filter as address parameters, to carry it across pages.
func (f Filter) Query() url.Values {
	q := url.Values{}
	if f.Preset != "" {
		q.Set("range", f.Preset)
	} else {
		q.Set("from", f.RawFrom)
		if f.RawTo != "" {
			q.Set("to", f.RawTo)
		}
	}
	if f.Scope != "" {
		q.Set("scope", f.Scope)
	}
	return q
}

// clipValue shortens a value quoted back in an error message.
func clipValue(s string) string {
	const n = 60
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}

func spanText(d time.Duration) string {
	days := d.Hours() / 24
	if days >= 1 {
		return fmt.Sprintf("%.0f days", days)
	}
	return d.Round(time.Minute).String()
}
