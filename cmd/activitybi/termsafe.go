package main

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/activitybi/activitybi/internal/event"
)

// Stored strings reach the terminal here: event columns and features
// (`sql`), audit fields (`audit`), token customers and notes (`token
// list`), an edge's client name and the uploader's last error (`status`).
// Any of them may hold control characters — feature_json may, detail
// and targets did before they were cleaned, identifiers accepted C1
// controls before they were refused — and a terminal obeys them: ESC
// (U+001B) and CSI (U+009B, a C1 control) start sequences that move the
// cursor, rewrite what was printed or set the window title. So the table
// outputs print control characters as visible escapes, and the JSON
// outputs escape the C1 ones too (encoding/json escapes C0 itself).

// termSafe returns s with its control characters (C0, DEL, C1) and each
// byte of invalid UTF-8 written as escapes: \t \n \r, \x1b, \x7f, \u009b,
// \xff. Everything else, backslashes included, is printed as it is.
func termSafe(s string) string {
	if !needsEscape(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case event.IsC1(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

func needsEscape(s string) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				return true
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || event.IsC1(r) {
			return true
		}
		i += size
	}
	return false
}

// termSafeJSON rewrites encoding/json's output so that C1 control
// characters, which it writes as UTF-8, are \u escapes instead: the same
// JSON values, nothing a terminal acts on. encoding/json already escapes
// C0 controls and replaces invalid UTF-8, and non-ASCII text appears only
// inside strings, so a UTF-8 C1 sequence (0xC2 0x80-0x9F) is always a
// character of a string.
func termSafeJSON(b []byte) []byte {
	i := bytes.IndexByte(b, 0xc2)
	if i < 0 {
		return b
	}
	out := make([]byte, 0, len(b)+16)
	for i >= 0 {
		if i+1 < len(b) && b[i+1] >= 0x80 && b[i+1] <= 0x9f {
			out = append(out, b[:i]...)
			out = fmt.Appendf(out, `\u%04x`, rune(b[i+1]))
			b = b[i+2:]
		} else {
			out = append(out, b[:i+1]...)
			b = b[i+1:]
		}
		i = bytes.IndexByte(b, 0xc2)
	}
	return append(out, b...)
}
