package event

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"time"
	"unicode/utf8"
)

// Marshal encodes e as compact one-line JSON (no newline). HTML characters
// are not escaped, so feature_json is stored byte for byte as accepted.
func Marshal(e *Event) ([]byte, error) {
	b, err := AppendMarshal(make([]byte, 0, marshalSizeHint(e)), e)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// AppendMarshal appends Marshal's encoding of e to dst, so that a caller
// can reuse one buffer. On error it returns dst at its original length.
//
// The output is byte for byte what encoding/json writes for an Event with
// SetEscapeHTML(false) (FuzzMarshal holds the two equal), errors included,
// but without reflection: it runs once per accepted event.
func AppendMarshal(dst []byte, e *Event) ([]byte, error) {
	orig := len(dst)
	b := append(dst, `{"activity_id":`...)
	b = appendJSONString(b, e.ActivityID)
	b = append(b, `,"ts":`...)
	b, err := appendJSONTime(b, e.TS)
	if err != nil {
		return dst[:orig], err
	}
	if e.Customer != "" {
		b = append(b, `,"customer":`...)
		b = appendJSONString(b, e.Customer)
	}
	b = append(b, `,"activity":`...)
	b = appendJSONString(b, e.Activity)
	if e.AnonymousCustomerID != "" {
		b = append(b, `,"anonymous_customer_id":`...)
		b = appendJSONString(b, e.AnonymousCustomerID)
	}
	b = append(b, `,"feature_json":`...)
	if b, err = appendJSONRaw(b, e.Features); err != nil {
		return dst[:orig], err
	}
	if e.RevenueImpact != nil {
		b = append(b, `,"revenue_impact":`...)
		if b, err = appendJSONFloat(b, *e.RevenueImpact); err != nil {
			return dst[:orig], err
		}
	}
	if e.Link != "" {
		b = append(b, `,"link":`...)
		b = appendJSONString(b, e.Link)
	}
	b = append(b, `,"_received_at":`...)
	if b, err = appendJSONTime(b, e.ReceivedAt); err != nil {
		return dst[:orig], err
	}
	b = append(b, `,"_source":`...)
	b = appendJSONString(b, e.Source)
	return append(b, '}'), nil
}

// marshalSizeHint is the encoded size of e when nothing needs escaping.
func marshalSizeHint(e *Event) int {
	const fixed = len(`{"activity_id":"","ts":"","customer":"","activity":"","anonymous_customer_id":"","feature_json":,"revenue_impact":,"link":"","_received_at":"","_source":""}`)
	const perTime = len("2006-01-02T15:04:05.999999999-07:00")
	const perFloat = 24
	return fixed + 2*perTime + perFloat + len(e.ActivityID) + len(e.Customer) + len(e.Activity) +
		len(e.AnonymousCustomerID) + len(e.Features) + len(e.Link) + len(e.Source)
}

// encodeErr is the error Marshal has always returned: encoding/json's,
// wrapped.
func encodeErr(err error) error { return fmt.Errorf("encode event: %w", err) }

// appendJSONTime is time.Time.MarshalJSON appending to b.
func appendJSONTime(b []byte, t time.Time) ([]byte, error) {
	out, err := t.AppendText(append(b, '"'))
	if err != nil {
		// AppendText and MarshalJSON share their checks; only the
		// message differs.
		_, err = t.MarshalJSON()
		return b, encodeErr(&json.MarshalerError{Type: reflect.TypeFor[time.Time](), Err: err})
	}
	return append(out, '"'), nil
}

// appendJSONRaw is json.RawMessage's encoding: null when nil, otherwise the
// bytes compacted, which for feature_json (compacted by Normalize) means as
// they are.
func appendJSONRaw(b []byte, raw json.RawMessage) ([]byte, error) {
	if raw == nil {
		return append(b, "null"...), nil
	}
	if isCompactJSON(raw) {
		return append(b, raw...), nil
	}
	buf := bytes.NewBuffer(b)
	if err := json.Compact(buf, raw); err != nil {
		return b, encodeErr(&json.MarshalerError{Type: reflect.TypeFor[json.RawMessage](), Err: err})
	}
	return buf.Bytes(), nil
}

// appendJSONFloat is encoding/json's float64 encoding: like %g, but with the
// exponent from 1e21 and below 1e-6, and exponents not padded.
func appendJSONFloat(b []byte, f float64) ([]byte, error) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return b, encodeErr(&json.UnsupportedValueError{Value: reflect.ValueOf(f), Str: strconv.FormatFloat(f, 'g', -1, 64)})
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-09 -> e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, nil
}

// appendJSONString is encoding/json's string encoding with HTML escaping
// off: \" \\ \b \f \n \r \t, other control characters as \u00XX, each byte
// of invalid UTF-8 as \ufffd, and U+2028 and U+2029 escaped; 0x7f and
// everything else as is.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
