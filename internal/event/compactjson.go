package event

import (
	"bytes"
	"fmt"
)

// maxCompactDepth is the deepest nesting isCompactJSON follows (one bit per
// level in a uint64); deeper values are left to encoding/json, which allows
// 10,000 levels.
const maxCompactDepth = 64

// isCompactJSON reports whether b is exactly one JSON value with no
// insignificant whitespace anywhere, so that json.Valid(b) holds and
// json.Compact would copy b unchanged. It accepts what encoding/json's
// scanner accepts (notably, bytes of invalid UTF-8 inside strings) and
// returns false for anything it is unsure of (nesting deeper than
// maxCompactDepth), so callers fall back to encoding/json, which also gives
// the exact error. FuzzIsCompactJSON holds it to that.
//
// It exists because feature_json is checked three times per event on the
// ingest path (decode, Normalize, Marshal), and encoding/json's scanner
// costs a function call per byte.
func isCompactJSON(b []byte) bool {
	return compactValueEnd(b, 0) == len(b)
}

// compactValueEnd returns the end of the compact JSON value starting at
// b[i], or -1 where isCompactJSON would say false. Whatever follows the value
// is not looked at.
func compactValueEnd(b []byte, i int) int {
	var stack uint64 // bit per open container, 1 = object, innermost lowest
	depth := 0
	n := len(b)
	for {
		// A value starts at b[i].
		if i >= n {
			return -1
		}
		switch b[i] {
		case '{':
			if i+1 < n && b[i+1] == '}' {
				i += 2
				break
			}
			if depth == maxCompactDepth {
				return -1
			}
			stack, depth = stack<<1|1, depth+1
			if i = compactKey(b, i+1); i < 0 {
				return -1
			}
			continue
		case '[':
			if i+1 < n && b[i+1] == ']' {
				i += 2
				break
			}
			if depth == maxCompactDepth {
				return -1
			}
			stack, depth = stack<<1, depth+1
			i++
			continue
		case '"':
			if i = stringEnd(b, i); i < 0 {
				return -1
			}
		case 't':
			if !hasLiteral(b, i, "true") {
				return -1
			}
			i += 4
		case 'f':
			if !hasLiteral(b, i, "false") {
				return -1
			}
			i += 5
		case 'n':
			if !hasLiteral(b, i, "null") {
				return -1
			}
			i += 4
		default:
			j := numberEnd(b, i)
			if j == i {
				return -1
			}
			i = j
		}
		// After a value: close containers until the next value or the end.
	after:
		for {
			if depth == 0 {
				return i
			}
			if i >= n {
				return -1
			}
			c := b[i]
			i++
			if stack&1 != 0 {
				switch c {
				case '}':
					stack, depth = stack>>1, depth-1
				case ',':
					if i = compactKey(b, i); i < 0 {
						return -1
					}
					break after
				default:
					return -1
				}
			} else {
				switch c {
				case ']':
					stack, depth = stack>>1, depth-1
				case ',':
					break after
				default:
					return -1
				}
			}
		}
	}
}

// compactKey reads `"key":` at b[i] and returns the index after the colon,
// or -1.
func compactKey(b []byte, i int) int {
	if i >= len(b) || b[i] != '"' {
		return -1
	}
	if i = stringEnd(b, i); i < 0 || i >= len(b) || b[i] != ':' {
		return -1
	}
	return i + 1
}

// stringEnd returns the index after the JSON string starting at b[i] (a
// quote), or -1 if it is not one: unterminated, a control character, or a
// bad escape. Other bytes pass, as in encoding/json.
func stringEnd(b []byte, i int) int {
	for j := i + 1; j < len(b); {
		for j < len(b) && !stringStop[b[j]] {
			j++
		}
		if j >= len(b) {
			break
		}
		switch c := b[j]; {
		case c == '"':
			return j + 1
		case c < 0x20:
			return -1
		}
		// A backslash.
		if j+1 >= len(b) {
			return -1
		}
		switch b[j+1] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			j += 2
		case 'u':
			if j+6 > len(b) {
				return -1
			}
			for _, h := range b[j+2 : j+6] {
				if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
					return -1
				}
			}
			j += 6
		default:
			return -1
		}
	}
	return -1
}

// stringStop marks the bytes that end a run of plain string content: the
// quote, the backslash and control characters.
var stringStop = func() (t [256]bool) {
	for c := range 0x20 {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

func hasLiteral(b []byte, i int, lit string) bool {
	return len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit
}

// loneSurrogate returns the index in the valid JSON text b of the first \u
// escape of half a UTF-16 surrogate pair that is not part of a pair (a
// high one not directly followed by a low one, or a low one on its own),
// or -1. encoding/json accepts such an escape (it decodes it as U+FFFD),
// but it is not Unicode, and the warehouse's JSON type refuses the whole
// value (DuckDB: "Malformed JSON ... no low surrogate in string"): a
// record holding one would be acknowledged and then never load.
func loneSurrogate(b []byte) int {
	// In valid JSON every backslash starts an escape: a backslash, u
	// and four hex digits, or one of two bytes.
	for i := bytes.IndexByte(b, '\\'); i >= 0; {
		next := i + 2
		if i+6 <= len(b) && b[i+1] == 'u' {
			next = i + 6
			switch r := hex4(b[i+2 : i+6]); {
			case r >= 0xdc00 && r <= 0xdfff:
				return i
			case r >= 0xd800 && r <= 0xdbff:
				if i+12 > len(b) || b[i+6] != '\\' || b[i+7] != 'u' {
					return i
				}
				if lo := hex4(b[i+8 : i+12]); lo < 0xdc00 || lo > 0xdfff {
					return i
				}
				next = i + 12
			}
		}
		if next >= len(b) {
			break
		}
		j := bytes.IndexByte(b[next:], '\\')
		if j < 0 {
			break
		}
		i = next + j
	}
	return -1
}

// hex4 is the value of four hex digits (-1 if they are not).
func hex4(h []byte) rune {
	var r rune
	for _, c := range h {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

// loneSurrogateErr describes the escape loneSurrogate found at i in b.
func loneSurrogateErr(b []byte, i int) error {
	return fmt.Errorf("holds %s, half of a UTF-16 surrogate pair without its other half: not a character (the warehouse's JSON type refuses it); "+
		"send the character itself or a complete pair such as \\ud83d\\ude00", b[i:min(i+6, len(b))])
}
