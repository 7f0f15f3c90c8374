package auth

import (
	"fmt"
	"strconv"
	"time"
)

// maxExpiry bounds a relative expiry, well inside time.Duration's range (292
// years); anything longer is a typo or should be "never" (no expiry).
const maxExpiry = 100 * 365 * 24 * time.Hour

// expiryForms is the help shown when an expiry cannot be parsed.
const expiryForms = "use a duration such as 30d, 12h, 90m or 1d12h, a date such as 2027-01-31 (valid through that day, UTC) or an RFC 3339 time such as 2027-01-31T18:00:00Z"

// ParseExpiry reads an expiry as a person writes it and returns it in UTC:
//
//   - a duration from now in days, hours and minutes: "30d", "12h", "90m",
//     "1d12h" (to the second);
//   - a date, "2027-01-31": the token is valid through that whole day in UTC,
//     so it expires at the start of the next day (2027-02-01T00:00:00Z);
//   - an RFC 3339 time, "2027-01-31T18:00:00+01:00".
//
// A time that is not after now is an error, and so is one more than 100
// years away, in every form.
func ParseExpiry(s string, now time.Time) (time.Time, error) {
	var t time.Time
	if d, ok, err := parseDays(s); ok {
		if err != nil {
			return time.Time{}, fmt.Errorf("expiry %q: %w", s, err)
		}
		t = now.Add(d).Truncate(time.Second)
	} else if day, err := time.Parse(time.DateOnly, s); err == nil {
		t = day.AddDate(0, 0, 1)
	} else if t, err = time.Parse(time.RFC3339, s); err != nil {
		return time.Time{}, fmt.Errorf("expiry %q is not understood: %s", s, expiryForms)
	}
	t = t.UTC()
	if !t.After(now) {
		return time.Time{}, fmt.Errorf("expiry %q is %s, which is not in the future (now %s)", s, t.Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	// The same bound for every form: a date such as 9999-12-31 ends on
	// 10000-01-01, which the token store cannot even write down (JSON
	// times stop at year 9999).
	if t.Sub(now) > maxExpiry {
		return time.Time{}, fmt.Errorf("expiry %q %s", s, tooLong())
	}
	return t, nil
}

func tooLong() error {
	return fmt.Errorf("is longer than the limit of %d days (a token with no expiry never expires)", maxExpiry/(24*time.Hour))
}

// parseDays reads one or more <digits><d|h|m> terms. ok is false when s does
// not have that shape at all (so other forms may be tried); err reports a
// duration of the right shape that is zero or too long.
func parseDays(s string) (d time.Duration, ok bool, err error) {
	if s == "" {
		return 0, false, nil
	}
	units := map[byte]time.Duration{'d': 24 * time.Hour, 'h': time.Hour, 'm': time.Minute}
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j == i || j == len(s) || units[s[j]] == 0 {
			return 0, false, nil
		}
		n, err := strconv.ParseInt(s[i:j], 10, 64)
		unit := units[s[j]]
		if err != nil || n > int64(maxExpiry/unit) {
			return 0, true, tooLong()
		}
		d += time.Duration(n) * unit
		if d > maxExpiry {
			return 0, true, tooLong()
		}
		i = j + 1
	}
	if d == 0 {
		return 0, true, fmt.Errorf("is zero; %s", expiryForms)
	}
	return d, true, nil
}
