package redact

import (
	"net/url"
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, want string }{
		{"redis://app:s3cret@cache:6379/0", "redis://app:xxxxx@cache:6379/0"},
		{"rediss://:s3cret@cache:6380", "rediss://:xxxxx@cache:6380"},
		{"https://ghp_TOKEN@example.com/x", "https://REDACTED@example.com/x"},
		{"redis://cache:6379/0", "redis://cache:6379/0"},
		{"s3://bucket?region=eu-west-1&prefix=a/", "s3://bucket?region=eu-west-1&prefix=a/"},
		{"redis://cache:6379?password=s3cret&db=1", "redis://cache:6379?db=1&password=xxxxx"},
		{"https://h/x?X-Amz-Signature=abc@def", "https://h/x?X-Amz-Signature=xxxxx"},
		{"file:///abs/dir#frag", "file:///abs/dir"},
		{"redis:/user:pa@ss", "redis: (not repeated: it holds an @, which may end a password)"},
		{"#://:secret@", "(not repeated: it holds an @, which may end a password)"},
		{"redis://u:p@h/x@y", "redis: (not repeated: it holds an @, which may end a password)"},
		{"https://h/?mail=a@b", "https: (not repeated: it holds an @, which may end a password)"},
		{"redis://u:p%zz@h", "(not shown: not a URL)"},
	} {
		got := URL(c.in)
		if got != c.want {
			t.Errorf("URL(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// Whatever the input, a password given in the user information is never
// repeated.
func FuzzURL(f *testing.F) {
	for _, s := range []string{"redis://app:s3cret@cache:6379/0", "x://u:longsecret@h/p@q#f", "a:b@c", "//u:pw123456@h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		i := strings.Index(raw, "://")
		if i < 0 {
			return
		}
		auth := raw[i+3:]
		if j := strings.IndexAny(auth, "/?#"); j >= 0 {
			auth = auth[:j]
		}
		at := strings.LastIndex(auth, "@")
		if at < 0 {
			return
		}
		colon := strings.Index(auth[:at], ":")
		if colon < 0 {
			return
		}
		pw := auth[colon+1 : at]
		if len(pw) < 6 || strings.Count(raw, pw) > 1 {
			return
		}
		got := URL(raw)
		if !strings.Contains(got, pw) {
			return
		}
		// The same URL with the password replaced: if its form still
		// contains pw, the rest of the URL makes those characters once
		// escaped (host "\x8000000" shows as "%8000000"), not the password.
		other := raw[:i+3+colon+1] + strings.Repeat("Q", len(pw)) + raw[i+3+at:]
		if strings.Contains(URL(other), pw) {
			return
		}
		t.Fatalf("URL(%q) = %q repeats the password %q", raw, got, pw)
	})
}

func TestLocation(t *testing.T) {
	t.Parallel()
	u, err := url.Parse("https://me:pw@h.example:8443/a/b?t=abi_x_secret#frag")
	if err != nil {
		t.Fatal(err)
	}
	if got := Location(u); got != "https://h.example:8443/a/b" {
		t.Errorf("Location = %q", got)
	}
}
