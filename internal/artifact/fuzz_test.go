package artifact

import (
	"mime"
	"path"
	"strings"
	"testing"
	"time"
)

// FuzzValidID: whatever ValidID accepts is safe as the last element of a
// blob key and of a URL path (it is only [0-9a-z]), and every id the store
// makes is accepted.
func FuzzValidID(f *testing.F) {
	id, err := newID(time.Unix(1700000000, 0))
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{id, strings.ToUpper(id), id[:IDLen-1] + "/", "../" + id[3:], strings.Repeat("0", IDLen), "", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !ValidID(s) {
			return
		}
		if len(s) != IDLen || strings.Trim(s, idAlphabet) != "" {
			t.Fatalf("ValidID(%q) but it has other characters or length", s)
		}
		key := blobKey("c", s)
		if path.Clean(key) != key || path.Base(key) != s || path.Dir(key) != customerDir("c") {
			t.Fatalf("key %q of a valid id is not a clean customer/id path", key)
		}
	})
}

// FuzzParseLocation: parseLocation never panics, and what it accepts is one
// of the three schemes with the shape the error messages promise.
func FuzzParseLocation(f *testing.F) {
	for _, s := range []string{"", "mem://", "file:///var/lib/x", "file:///", "file://host/x", "file:rel",
		"s3://b?region=eu-west-1&endpoint=http://127.0.0.1:9000&use_path_style=true", "s3://", "s3://u:p@b",
		"s3://b/p", "gs://b", "s3://user:secret%zz@b", "s3://user:secret@b?x=%zz", "file:///a/../b", "file:///a/b/", "%zz", "file:///a#f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		loc, err := parseLocation(raw, "/data")
		if err != nil {
			if loc != nil {
				t.Fatal("a location and an error")
			}
			// The password may also appear elsewhere in the URL (a host
			// "0secret", or a user name equal to it, which the error may
			// show): the same URL with another password of the same
			// length tells what the rest of it puts in the error. Only
			// more occurrences than that are a leak.
			if pw := password(raw); len(pw) >= 6 && strings.Contains(err.Error(), pw) {
				_, errOther := parseLocation(withPassword(raw, filler(pw)), "/data")
				if errOther == nil || strings.Count(err.Error(), pw) > strings.Count(errOther.Error(), pw) {
					t.Fatalf("the error repeats the password %q: %v", pw, err)
				}
			}
			return
		}
		u := loc.u
		if u.User != nil || u.Fragment != "" {
			t.Fatalf("accepted %q with user information or a fragment", raw)
		}
		switch u.Scheme {
		case "file":
			if loc.dir == "" || !strings.HasPrefix(loc.dir, "/") || loc.dir == "/" || path.Clean(loc.dir) != loc.dir {
				t.Fatalf("accepted %q as folder %q", raw, loc.dir)
			}
		case "s3":
			if u.Host == "" || loc.dir != "" {
				t.Fatalf("accepted %q: bucket %q, dir %q", raw, u.Host, loc.dir)
			}
		case "mem":
			if loc.dir != "" {
				t.Fatalf("accepted %q with a folder", raw)
			}
		default:
			t.Fatalf("accepted scheme %q of %q", u.Scheme, raw)
		}
	})
}

// FuzzDisposition: for any name a Put accepts, the Content-Disposition
// header parses back to an attachment with exactly that file name (or, if
// it cannot be encoded, to a bare attachment), and it holds no line break.
func FuzzDisposition(f *testing.F) {
	for _, s := range []string{"", "a.csv", "résumé \"q\".json", "a;b=c.csv", "x\"y", "日本語.csv", "a%20b", "'; filename=evil.exe"} {
		f.Add(s, "text/csv")
	}
	f.Add("x.png", "image/png")
	f.Fuzz(func(t *testing.T, name, contentType string) {
		if checkName(name) != nil {
			return
		}
		m := &Meta{ID: strings.Repeat("0", IDLen), Name: name, ContentType: contentType}
		d := disposition(m)
		if d == "" {
			mt, _, _ := mime.ParseMediaType(contentType)
			if !inlineTypes[mt] {
				t.Fatalf("no disposition for %q", contentType)
			}
			return
		}
		if strings.ContainsAny(d, "\r\n") {
			t.Fatalf("disposition %q has a line break", d)
		}
		typ, params, err := mime.ParseMediaType(d)
		if err != nil || typ != "attachment" {
			t.Fatalf("disposition %q: %q %v", d, typ, err)
		}
		want := name
		if want == "" {
			mt, _, _ := mime.ParseMediaType(contentType)
			want = m.ID + extensions[mt]
		}
		if got, ok := params["filename"]; ok && got != want {
			t.Fatalf("disposition %q names %q, want %q", d, got, want)
		} else if !ok && d != "attachment" {
			t.Fatalf("disposition %q has no file name", d)
		}
	})
}

// password is what a person would have meant as the password in raw: the
// text between the first ':' after "://" and the last '@' before the path.
func password(raw string) string {
	_, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return ""
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	at := strings.LastIndexByte(rest, '@')
	if at < 0 {
		return ""
	}
	_, pw, ok := strings.Cut(rest[:at], ":")
	if !ok {
		return ""
	}
	return pw
}

// withPassword is raw with the password that password(raw) finds replaced
// by pw.
func withPassword(raw, pw string) string {
	scheme, rest, _ := strings.Cut(raw, "://")
	end := len(rest)
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		end = i
	}
	at := strings.LastIndexByte(rest[:end], '@')
	colon := strings.IndexByte(rest[:at], ':')
	return scheme + "://" + rest[:colon+1] + pw + rest[at:]
}

// filler is a string as long as pw of one letter pw does not hold.
func filler(pw string) string {
	for _, c := range "QZXJKV" {
		if !strings.ContainsRune(pw, c) {
			return strings.Repeat(string(c), len(pw))
		}
	}
	return strings.Repeat("0", len(pw)) // pw holds all six letters, so it is not all zeros
}
