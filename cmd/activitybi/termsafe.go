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
// cursor, rewrite what was printed or set the window title. Unicode's
// bidirectional controls (U+202E RIGHT-TO-LEFT OVERRIDE and the like) do
// not move the cursor but reorder what follows them on the line, so a
// stored customer name or SQL result could show other text than it holds
// ("Trojan Source"). So the table and csv outputs print control
// characters and bidi controls as visible escapes, and the JSON outputs
// escape the C1 and bidi ones too (encoding/json escapes C0 itself).

// termSafe returns s with its control characters (C0, DEL, C1), its
// bidirectional controls and each byte of invalid UTF-8 written as
// escapes: \t \n \r, \x1b, \x7f, \u009b, \u202e, \xff. Everything else,
// backslashes included, is printed as it is.
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
		case uEscaped(r):
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
		if r == utf8.RuneError && size == 1 || uEscaped(r) {
			return true
		}
		i += size
	}
	return false
}

// uEscaped reports whether r is printed as a \u escape: a C1 control or a
// bidirectional control.
func uEscaped(r rune) bool { return event.IsC1(r) || isBidiControl(r) }

// isBidiControl reports whether r is one of Unicode's explicit
// bidirectional formatting characters (UAX #9): the marks ALM (U+061C),
// LRM and RLM (U+200E, U+200F), the embeddings and overrides LRE, RLE,
// PDF, LRO, RLO (U+202A-U+202E) and the isolates LRI, RLI, FSI, PDI
// (U+2066-U+2069).
func isBidiControl(r rune) bool {
	return r == 0x061c || r == 0x200e || r == 0x200f || r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069
}

// termSafeJSON rewrites encoding/json's output so that C1 controls and
// bidi controls, which it writes as UTF-8, are \u escapes instead: the
// same JSON values, nothing a terminal acts on. encoding/json already
// escapes C0 controls and replaces invalid UTF-8, and non-ASCII text
// appears only inside strings, so such a character is always a character
// of a string; all of them are in the BMP, so one \u escape each.
func termSafeJSON(b []byte) []byte {
	i := bytes.IndexFunc(b, uEscaped)
	if i < 0 {
		return b
	}
	out := make([]byte, 0, len(b)+16)
	for i >= 0 {
		r, size := utf8.DecodeRune(b[i:])
		out = append(out, b[:i]...)
		out = fmt.Appendf(out, `\u%04x`, r)
		b = b[i+size:]
		i = bytes.IndexFunc(b, uEscaped)
	}
	return append(out, b...)
}
