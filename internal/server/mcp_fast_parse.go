package server

import (
	"encoding/json"
	"slices"
	"unicode/utf8"
)

// fastCall is a log_event tools/call request as sniffLogEventCall found it.
type fastCall struct {
	id   []byte // the JSON-RPC id as sent (an integer or a plain string)
	args []byte // the arguments value as sent; nil when absent
	tool string // the tool's name
}

// sniffLogEventCall recognises the one request form the fast path answers:
// a single JSON object with exactly the members jsonrpc ("2.0"), id (an
// integer of at most maxFastIDDigits digits, or a string without escapes),
// method ("tools/call") and params, whose members are name ("log_event")
// and optionally arguments — each at most once, spelt exactly so. Anything
// else (a batch, a notification, another method or tool, _meta, unknown or
// repeated members, invalid JSON or UTF-8) is not recognised and is left to
// the go-sdk, which decodes leniently (case-insensitive member names, the
// last of repeated members) in ways this path does not try to copy.
func sniffLogEventCall(b []byte) (fastCall, bool) {
	return sniffToolCall(b, `"log_event"`)
}

// sniffToolCall is sniffLogEventCall for a call of any of the tools names
// (each quoted, as JSON spells it); fastCall.tool says which.
func sniffToolCall(b []byte, names ...string) (fastCall, bool) {
	var c fastCall
	if !utf8.Valid(b) || !json.Valid(b) {
		return c, false
	}
	var seenVersion, seenMethod, seenParams bool
	i := skipWS(b, 0)
	ok := eachMember(b, &i, func(key []byte, v []byte) bool {
		switch string(key) {
		case "jsonrpc":
			if seenVersion || string(v) != `"2.0"` {
				return false
			}
			seenVersion = true
		case "id":
			if c.id != nil || !fastID(v) {
				return false
			}
			c.id = v
		case "method":
			if seenMethod || string(v) != `"tools/call"` {
				return false
			}
			seenMethod = true
		case "params":
			if seenParams || len(v) == 0 || v[0] != '{' {
				return false
			}
			seenParams = true
			var seenName bool
			j := 0
			if !eachMember(v, &j, func(k, pv []byte) bool {
				switch string(k) {
				case "name":
					if seenName || !slices.Contains(names, string(pv)) {
						return false
					}
					c.tool = string(pv[1 : len(pv)-1])
					seenName = true
				case "arguments":
					if c.args != nil {
						return false
					}
					c.args = pv
				default:
					return false
				}
				return true
			}) || !seenName {
				return false
			}
		default:
			return false
		}
		return true
	})
	if !ok || skipWS(b, i) != len(b) || !seenVersion || !seenMethod || !seenParams || c.id == nil {
		return fastCall{}, false
	}
	return c, true
}

// fastID: an integer the go-sdk's float64 decoding keeps exact, or a
// string it will write back byte for byte: printable ASCII without an
// escape or a character a JSON encoder may escape (<, > and & for HTML).
// Anything else (U+2028 and U+2029, which encoding/json always escapes,
// among them) is left to the go-sdk (found in review, session 8).
func fastID(v []byte) bool {
	if len(v) == 0 {
		return false
	}
	if v[0] == '"' {
		for _, ch := range v[1 : len(v)-1] {
			if ch < 0x20 || ch > 0x7e || ch == '\\' || ch == '<' || ch == '>' || ch == '&' {
				return false
			}
		}
		return true
	}
	d := v
	if d[0] == '-' {
		d = d[1:]
	}
	if len(d) == 0 || len(d) > maxFastIDDigits || (len(d) > 1 && d[0] == '0') || (v[0] == '-' && string(d) == "0") {
		return false
	}
	for _, ch := range d {
		if ch < '0' || ch > '9' {
			return false
		}
	}
	return true
}

// eachMember calls f with the raw key (without quotes) and the raw value
// of each member of the object at b[*i], which must be valid JSON (checked
// by the caller), and leaves *i after the object. A key with an escape is
// refused (false), as is any member f refuses.
func eachMember(b []byte, i *int, f func(key, value []byte) bool) bool {
	j := skipWS(b, *i)
	if j >= len(b) || b[j] != '{' {
		return false
	}
	j = skipWS(b, j+1)
	if j < len(b) && b[j] == '}' {
		*i = j + 1
		return true
	}
	for j < len(b) {
		if b[j] != '"' {
			return false
		}
		end := skipValue(b, j)
		key := b[j+1 : end-1]
		for _, ch := range key {
			if ch == '\\' {
				return false
			}
		}
		j = skipWS(b, end)
		if j >= len(b) || b[j] != ':' {
			return false
		}
		vs := skipWS(b, j+1)
		ve := skipValue(b, vs)
		if ve <= vs || !f(key, b[vs:ve]) {
			return false
		}
		j = skipWS(b, ve)
		if j >= len(b) {
			return false
		}
		switch b[j] {
		case ',':
			j = skipWS(b, j+1)
		case '}':
			*i = j + 1
			return true
		default:
			return false
		}
	}
	return false
}

// skipValue returns the index just after the JSON value starting at
// b[i] (valid JSON assumed), or i if there is none.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		for j := i + 1; j < len(b); j++ {
			switch b[j] {
			case '\\':
				j++
			case '"':
				return j + 1
			}
		}
		return len(b)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				j = skipValue(b, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return len(b)
	default:
		j := i
		for j < len(b) {
			switch b[j] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return j
			}
			j++
		}
		return j
	}
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}
