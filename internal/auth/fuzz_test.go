package auth

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzVerify: no input but the exact token verifies, and nothing panics.
func FuzzVerify(f *testing.F) {
	dir := f.TempDir()
	s, err := Open(dir)
	if err != nil {
		f.Fatal(err)
	}
	tok, info, err := s.Create("alice", time.Time{}, "")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(tok)
	f.Add(tok[:len(tok)-1] + "A")
	f.Add("abi_" + info.ID + "_")
	f.Add("abi__")
	f.Add("")
	f.Add(strings.ToUpper(tok))
	now := time.Now()
	f.Fuzz(func(t *testing.T, in string) {
		got, err := s.Verify(in, now)
		if in == tok {
			if err != nil || got.Customer != "alice" {
				t.Fatalf("the real token: %+v %v", got, err)
			}
			return
		}
		if err == nil {
			t.Fatalf("%q verified as %+v", in, got)
		}
		if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnknown) {
			t.Fatalf("%q: unexpected error kind %v", in, err)
		}
		if strings.Contains(err.Error(), tok[len(tok)-20:]) {
			t.Fatalf("an error carries the secret: %v", err)
		}
	})
}

// FuzzParseExpiry: an accepted expiry is after now; nothing panics.
func FuzzParseExpiry(f *testing.F) {
	for _, s := range []string{"30d", "12h", "90m", "1d12h", "2027-01-31", "2027-01-31T10:00:00Z", "0d", "-1d", "36501d", "", "d", "1x"} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseExpiry(s, now)
		if err == nil && !got.After(now) {
			t.Fatalf("%q accepted as %v, not after now", s, got)
		}
	})
}
