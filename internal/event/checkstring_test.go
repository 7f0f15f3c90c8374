package event

import (
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// checkStringRef is checkString before its ASCII fast path.
func checkStringRef(ve *ValidationError, field, s string) {
	if s == "" {
		return
	}
	if !utf8.ValidString(s) {
		ve.add(field, "is not valid UTF-8")
		return
	}
	if n := utf8.RuneCountInString(s); n > MaxStringLen {
		ve.add(field, "is %d characters; the limit is %d", n, MaxStringLen)
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		ve.add(field, "contains control characters")
	}
}

// FuzzCheckString: checkString reports what it always did.
func FuzzCheckString(f *testing.F) {
	for _, s := range []string{"", "called_tool", "a\x01b", "a\x7fb", "\xff", "é", strings.Repeat("x", MaxStringLen+1), strings.Repeat("é", MaxStringLen+1) + "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var got, want ValidationError
		checkString(&got, "f", s)
		checkStringRef(&want, "f", s)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("checkString(%q) = %v, want %v", s, got.Errs, want.Errs)
		}
	})
}
