package event

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// decodeFast decodes the common shape of an event record — the one Marshal
// writes: known keys once each, strings without escapes, numbers and nulls —
// without reflection. It returns false for anything else (escapes, unknown or
// repeated keys, odd numbers, trailing data), and Decode then uses
// encoding/json, which gives the exact error. FuzzDecodeFast holds the two
// decoders equal on everything the fast one accepts.
func decodeFast(b []byte, e *Event) bool {
	_, ok := decodeFastSeen(b, e)
	return ok
}

// Key bits reported by decodeFastSeen, one per column.
const (
	seenID = 1 << iota
	seenTS
	seenCustomer
	seenActivity
	seenAnon
	seenFeatures
	seenRevenue
	seenLink
	seenReceived
	seenSource
)

// decodeFastSeen is decodeFast reporting which keys it saw (the seen* bits), so
// that DecodeInput can tell an absent ts from a zero one and refuse the
// pipeline's columns.
func decodeFastSeen(b []byte, e *Event) (seen int, ok bool) {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return 0, false
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		i++
		return 0, skipWS(b, i) == len(b)
	}
	for {
		// key
		if i >= len(b) || b[i] != '"' {
			return 0, false
		}
		ks := i + 1
		ke := bytes.IndexByte(b[ks:], '"')
		if ke < 0 {
			return 0, false
		}
		key := b[ks : ks+ke]
		if bytes.IndexByte(key, '\\') >= 0 {
			return 0, false
		}
		i = skipWS(b, ks+ke+1)
		if i >= len(b) || b[i] != ':' {
			return 0, false
		}
		i = skipWS(b, i+1)
		if i >= len(b) {
			return 0, false
		}
		var bit int
		switch string(key) {
		case "activity_id":
			bit = seenID
			e.ActivityID, i, ok = plainString(b, i)
		case "customer":
			bit = seenCustomer
			e.Customer, i, ok = plainString(b, i)
		case "activity":
			bit = seenActivity
			e.Activity, i, ok = plainString(b, i)
		case "anonymous_customer_id":
			bit = seenAnon
			e.AnonymousCustomerID, i, ok = plainString(b, i)
		case "link":
			bit = seenLink
			e.Link, i, ok = plainString(b, i)
		case "_source":
			bit = seenSource
			e.Source, i, ok = plainString(b, i)
		case "ts", "_received_at":
			bit = seenTS
			t := &e.TS
			if key[0] == '_' {
				bit, t = seenReceived, &e.ReceivedAt
			}
			start := i
			if i, ok = plainStringEnd(b, i); ok {
				ok = t.UnmarshalJSON(b[start:i]) == nil
			}
		case "feature_json":
			bit = seenFeatures
			if b[i] != '{' {
				return 0, false
			}
			end, vok := skipValue(b, i)
			if !vok {
				return 0, false
			}
			e.Features = append(json.RawMessage(nil), b[i:end]...)
			i, ok = end, true
		case "revenue_impact":
			bit = seenRevenue
			if bytes.HasPrefix(b[i:], []byte("null")) {
				e.RevenueImpact, i, ok = nil, i+4, true
				break
			}
			end := numberEnd(b, i)
			if end == i {
				return 0, false
			}
			f, err := strconv.ParseFloat(string(b[i:end]), 64)
			if err != nil {
				return 0, false
			}
			e.RevenueImpact, i, ok = &f, end, true
		default:
			return 0, false
		}
		if !ok || seen&bit != 0 {
			return 0, false
		}
		seen |= bit
		i = skipWS(b, i)
		if i >= len(b) {
			return 0, false
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case '}':
			return seen, skipWS(b, i+1) == len(b)
		default:
			return 0, false
		}
	}
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// plainString reads a JSON string at b[i] that has no escapes, no control
// characters and is valid UTF-8; anything else is left to encoding/json.
func plainString(b []byte, i int) (string, int, bool) {
	end, ok := plainStringEnd(b, i)
	if !ok {
		return "", i, false
	}
	return string(b[i+1 : end-1]), end, true
}

// plainStringEnd is plainString without making the string: it returns the
// index after the closing quote.
func plainStringEnd(b []byte, i int) (int, bool) {
	if b[i] != '"' {
		return i, false
	}
	j := i + 1
	ascii := true
	for ; j < len(b); j++ {
		c := b[j]
		if c == '"' {
			break
		}
		if c == '\\' || c < 0x20 {
			return i, false
		}
		if c >= 0x80 {
			ascii = false
		}
	}
	if j >= len(b) {
		return i, false
	}
	if !ascii && !utf8.Valid(b[i+1:j]) {
		return i, false
	}
	return j + 1, true
}

// numberEnd returns the end of a JSON number starting at b[i] (i itself when
// there is none), following the JSON grammar exactly.
func numberEnd(b []byte, i int) int {
	j := i
	if j < len(b) && b[j] == '-' {
		j++
	}
	switch {
	case j < len(b) && b[j] == '0':
		j++
	case j < len(b) && b[j] >= '1' && b[j] <= '9':
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
	default:
		return i
	}
	if j < len(b) && b[j] == '.' {
		j++
		k := j
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		if j == k {
			return i
		}
	}
	if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
		j++
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		k := j
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		if j == k {
			return i
		}
	}
	return j
}

// skipValue returns the end of the JSON object or array starting at b[i]
// and whether it is valid JSON.
func skipValue(b []byte, i int) (int, bool) {
	// Usually the value is compact and one pass both finds its end and
	// checks it; if not, find the end and ask encoding/json.
	if end := compactValueEnd(b, i); end >= 0 {
		return end, true
	}
	depth := 0
	for j := i; j < len(b); j++ {
		switch b[j] {
		case '"':
			for j++; j < len(b) && b[j] != '"'; j++ {
				if b[j] == '\\' {
					j++
				}
			}
			if j >= len(b) {
				return 0, false
			}
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				end := j + 1
				if !json.Valid(b[i:end]) {
					return 0, false
				}
				return end, true
			}
		}
	}
	return 0, false
}
