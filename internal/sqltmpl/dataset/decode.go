package dataset

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Decode parses a spec strictly and returns it validated and in canonical
// form (defaults filled, filters sorted), so that equivalent specs have the
// same Canonical bytes. Unknown fields, duplicate keys, wrong types and out
// of range values are all reported at once, each with its JSON path, in a
// *SpecError wrapping ErrInvalidSpec.
//
// encoding/json is not used to fill the struct because it stops at the
// first error, ignores duplicate keys (the last one silently wins) and
// accepts case-insensitive field names; the spec comes from an LLM or a
// person, who should see every mistake, and "Activity" must not pass as
// "activity".
func Decode(raw json.RawMessage) (*Spec, error) {
	var ps problems
	switch {
	case len(raw) > MaxSpecBytes:
		ps.addLimit("", "MaxSpecBytes", "the spec is %d bytes; at most %d are accepted", len(raw), MaxSpecBytes)
		return nil, ps.err()
	case !utf8.Valid(raw):
		ps.add("", "the spec is not valid UTF-8")
		return nil, ps.err()
	}
	root, err := parseJSON(raw)
	if err != nil {
		var le *limitErr
		if errors.As(err, &le) {
			ps.addLimit(le.path, le.limit, "%s", le.msg)
		} else {
			ps.add("", "%v", err)
		}
		return nil, ps.err()
	}
	s := specFromNode(root, &ps)
	if s == nil {
		return nil, ps.err()
	}
	s.normalize()
	s.validate(&ps)
	if err := ps.err(); err != nil {
		return nil, err
	}
	return s, nil
}

// Canonical returns the spec as compact JSON with its fields in a fixed
// order: for a spec returned by Decode, equivalent specs give equal bytes
// (a query hash can be taken over them).
func (s *Spec) Canonical() []byte {
	b, err := json.Marshal(s)
	if err != nil {
		// Only an unsupported Value type (a spec built in code that
		// did not pass validation) can get here.
		return []byte(fmt.Sprintf(`{"error":%q}`, err.Error()))
	}
	return b
}

// node is a parsed JSON value. Objects keep their keys in input order.
type node struct {
	kind  nodeKind
	keys  []string
	vals  []*node // object values, parallel to keys; array elements
	str   string
	num   json.Number
	truth bool
}

type nodeKind int

const (
	kNull nodeKind = iota
	kBool
	kNumber
	kString
	kArray
	kObject
)

func (k nodeKind) String() string {
	return [...]string{"null", "boolean", "number", "string", "array", "object"}[k]
}

// limitErr is a parse error caused by a limit.
type limitErr struct {
	path, limit, msg string
}

func (e *limitErr) Error() string { return e.msg }

// parseJSON parses exactly one JSON value, refusing duplicate object keys
// and nesting deeper than MaxDepth.
func parseJSON(raw []byte) (*node, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	n, err := parseValue(dec, "", 1)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("invalid JSON: unexpected data after the spec object at byte %d", dec.InputOffset())
	}
	return n, nil
}

func parseValue(dec *json.Decoder, path string, depth int) (*node, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, jsonErr(err, dec)
	}
	return parseFrom(dec, tok, path, depth)
}

func parseFrom(dec *json.Decoder, tok json.Token, path string, depth int) (*node, error) {
	switch t := tok.(type) {
	case nil:
		return &node{kind: kNull}, nil
	case bool:
		return &node{kind: kBool, truth: t}, nil
	case json.Number:
		return &node{kind: kNumber, num: t}, nil
	case string:
		return &node{kind: kString, str: t}, nil
	case json.Delim:
		if t != '{' && t != '[' {
			return nil, fmt.Errorf("invalid JSON: unexpected %q at byte %d", t, dec.InputOffset())
		}
		if depth > MaxDepth {
			return nil, &limitErr{path: path, limit: "MaxDepth", msg: fmt.Sprintf("nested deeper than %d levels; a spec is at most 6 deep", MaxDepth)}
		}
		if t == '[' {
			n := &node{kind: kArray}
			for dec.More() {
				el, err := parseValue(dec, fmt.Sprintf("%s[%d]", path, len(n.vals)), depth+1)
				if err != nil {
					return nil, err
				}
				n.vals = append(n.vals, el)
			}
			if _, err := dec.Token(); err != nil {
				return nil, jsonErr(err, dec)
			}
			return n, nil
		}
		n := &node{kind: kObject}
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, jsonErr(err, dec)
			}
			k, _ := kt.(string)
			p := joinPath(path, k)
			if seen[k] {
				return nil, fmt.Errorf("%s: duplicate key (each field may appear once)", pathOrRoot(p))
			}
			seen[k] = true
			v, err := parseValue(dec, p, depth+1)
			if err != nil {
				return nil, err
			}
			n.keys = append(n.keys, k)
			n.vals = append(n.vals, v)
		}
		if _, err := dec.Token(); err != nil {
			return nil, jsonErr(err, dec)
		}
		return n, nil
	}
	return nil, fmt.Errorf("invalid JSON at byte %d", dec.InputOffset())
}

func jsonErr(err error, dec *json.Decoder) error {
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("invalid JSON: unexpected end of input")
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("invalid JSON at byte %d: %s", se.Offset, strings.TrimPrefix(se.Error(), "json: "))
	}
	return fmt.Errorf("invalid JSON at byte %d: %v", dec.InputOffset(), err)
}

func joinPath(path, key string) string {
	// A key that is not a plain name is shown quoted, so a hostile key
	// cannot forge a path.
	if !identRE.MatchString(key) {
		key = quote(key)
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

func pathOrRoot(p string) string {
	if p == "" {
		return "spec"
	}
	return p
}

// fields describes the keys an object accepts.
type fields map[string]func(n *node, path string)

// object walks an object node: every key must be known. Missing fields are
// validate's to report, with what they accept.
func object(n *node, path string, ps *problems, f fields, order string) bool {
	if n.kind != kObject {
		ps.add(pathOrRoot(path), "must be an object, got %s", n.kind)
		return false
	}
	for i, k := range n.keys {
		p := joinPath(path, k)
		fn, ok := f[k]
		if !ok {
			ps.add(p, "unknown field (known: %s)", order)
			continue
		}
		fn(n.vals[i], p)
	}
	return true
}

func hasKey(n *node, k string) bool {
	for _, key := range n.keys {
		if key == k {
			return true
		}
	}
	return false
}

func str(n *node, path string, ps *problems, dst *string) {
	if n.kind != kString {
		ps.add(path, "must be a string, got %s", n.kind)
		return
	}
	*dst = n.str
}

// integer decodes an integer field. A value too large for the spec to hold
// (beyond 32 bits) is reported by outOfRange, with the value as written and
// whether it is above the range, so that the message names the accepted
// range as validate's does for smaller values.
func integer(n *node, path string, ps *problems, dst *int, outOfRange func(got string, above bool)) {
	if n.kind != kNumber {
		ps.add(path, "must be an integer, got %s", n.kind)
		return
	}
	v, err := strconv.ParseInt(n.num.String(), 10, 64)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			outOfRange(n.num.String(), !strings.HasPrefix(n.num.String(), "-"))
			return
		}
		ps.add(path, "must be an integer, got %s", n.num)
		return
	}
	if v > math.MaxInt32 || v < math.MinInt32 {
		outOfRange(n.num.String(), v > 0)
		return
	}
	*dst = int(v)
}

func timestamp(n *node, path string, ps *problems, dst **time.Time) {
	if n.kind != kString {
		ps.add(path, "must be an RFC 3339 timestamp string (e.g. 2026-03-01T00:00:00Z), got %s", n.kind)
		return
	}
	t, err := time.Parse(time.RFC3339Nano, n.str)
	if err != nil {
		ps.add(path, "%s is not an RFC 3339 timestamp (e.g. 2026-03-01T00:00:00Z)", quote(n.str))
		return
	}
	*dst = &t
}

func stringList(n *node, path string, ps *problems, dst *[]string) {
	if n.kind != kArray {
		ps.add(path, "must be an array of strings, got %s", n.kind)
		return
	}
	out := make([]string, 0, len(n.vals))
	for i, el := range n.vals {
		if el.kind != kString {
			// Kept as "" so that later elements keep their paths.
			ps.add(fmt.Sprintf("%s[%d]", path, i), "must be a string, got %s", el.kind)
		}
		out = append(out, el.str)
	}
	*dst = out
}

func filters(n *node, path string, ps *problems, dst *[]Filter) {
	if n.kind != kArray {
		ps.add(path, "must be an array of filter objects, got %s", n.kind)
		return
	}
	out := make([]Filter, 0, len(n.vals))
	for i, el := range n.vals {
		p := fmt.Sprintf("%s[%d]", path, i)
		var f Filter
		ok := object(el, p, ps, fields{
			"feature": func(n *node, p string) { str(n, p, ps, &f.Feature) },
			"op":      func(n *node, p string) { str(n, p, ps, &f.Op) },
			"value":   func(n *node, p string) { f.Value = filterValue(n, p, ps) },
		}, "feature, op, value")
		if !ok {
			// Keep the place, so that later filters keep their
			// paths; the problem above covers this one's fields.
			f = Filter{}
		}
		out = append(out, f)
	}
	*dst = out
}

// filterValue converts a filter's value: a string, a finite number, a
// boolean, or an array of those. Whether the type suits the operator is
// decided in validate.
func filterValue(n *node, path string, ps *problems) any {
	switch n.kind {
	case kString:
		return n.str
	case kBool:
		return n.truth
	case kNumber:
		f, err := strconv.ParseFloat(n.num.String(), 64)
		if err != nil || math.IsInf(f, 0) {
			ps.add(path, "%s is out of range for a number", n.num)
			return nil
		}
		return f
	case kArray:
		out := make([]any, 0, len(n.vals))
		for i, el := range n.vals {
			p := fmt.Sprintf("%s[%d]", path, i)
			if el.kind == kArray || el.kind == kObject || el.kind == kNull {
				ps.add(p, "must be a string or a number, got %s", el.kind)
				continue
			}
			if v := filterValue(el, p, ps); v != nil {
				out = append(out, v)
			}
		}
		return out
	}
	ps.add(path, "must be a string, a number, a boolean or (for op \"in\") an array, got %s", n.kind)
	return nil
}

// specFromNode fills a Spec from the parsed JSON, reporting unknown fields
// and wrong types. It returns nil if the root is not an object.
func specFromNode(root *node, ps *problems) *Spec {
	s := &Spec{}
	ok := object(root, "", ps, fields{
		"cohort": func(n *node, p string) {
			c := &s.Cohort
			object(n, p, ps, fields{
				"activity":   func(n *node, p string) { str(n, p, ps, &c.Activity) },
				"occurrence": func(n *node, p string) { str(n, p, ps, &c.Occurrence) },
				"nth": func(n *node, p string) {
					integer(n, p, ps, &c.Nth, func(got string, above bool) {
						ps.addLimit(p, limitName(above, "MaxNth"), nthRangeMsg, MaxNth, got)
					})
				},
				"from":     func(n *node, p string) { timestamp(n, p, ps, &c.From) },
				"to":       func(n *node, p string) { timestamp(n, p, ps, &c.To) },
				"filters":  func(n *node, p string) { filters(n, p, ps, &c.Filters) },
				"features": func(n *node, p string) { stringList(n, p, ps, &c.Features) },
			}, "activity, occurrence, nth, from, to, filters, features")
		},
		"append": func(n *node, p string) {
			if n.kind != kArray {
				ps.add(p, "must be an array of append objects, got %s", n.kind)
				return
			}
			s.Appends = make([]Append, len(n.vals))
			for i, el := range n.vals {
				a := &s.Appends[i]
				object(el, fmt.Sprintf("%s[%d]", p, i), ps, fields{
					"activity":     func(n *node, p string) { str(n, p, ps, &a.Activity) },
					"relationship": func(n *node, p string) { str(n, p, ps, &a.Relationship) },
					"features":     func(n *node, p string) { stringList(n, p, ps, &a.Features) },
					"aggregate":    func(n *node, p string) { str(n, p, ps, &a.Aggregate) },
					"of":           func(n *node, p string) { str(n, p, ps, &a.Of) },
					"filters":      func(n *node, p string) { filters(n, p, ps, &a.Filters) },
					"as":           func(n *node, p string) { str(n, p, ps, &a.As) },
				}, "activity, relationship, features, aggregate, of, filters, as")
			}
		},
		"limit": func(n *node, p string) {
			integer(n, p, ps, &s.Limit, func(got string, above bool) {
				ps.addLimit(p, limitName(above, "MaxLimit"), limitRangeMsg, MaxLimit, got, DefaultLimit)
			})
		},
	}, "cohort, append, limit")
	if !ok {
		return nil
	}
	if !hasKey(root, "cohort") {
		ps.add("cohort", `required: an object such as {"activity": "submitted_prompt"}`)
	}
	return s
}
