package dataset

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/activitybi/activitybi/internal/event"
)

var (
	// activityRE is the stream's own rule for activity names: a name that
	// fails it can match no row.
	activityRE = regexp.MustCompile(event.ActivityPattern)
	// identRE is the rule for feature keys and "as" prefixes. They become
	// column names (quoted, so case is kept) and, for feature keys, bound
	// JSON keys; a name of letters, digits and _ is safe in both.
	identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)
)

// cohortColumns are the dataset's fixed leading columns.
var cohortColumns = []string{"activity_id", "ts", "customer"}

func isFirstLast(rel string) bool {
	switch rel {
	case FirstEver, LastEver, FirstBefore, LastBefore, FirstAfter, LastAfter, FirstInBetween, LastInBetween:
		return true
	}
	return false
}

func isAggregate(rel string) bool {
	switch rel {
	case AggregateBefore, AggregateAfter, AggregateInBetween, AggregateAllEver:
		return true
	}
	return false
}

// prepare returns a validated copy of s in canonical form, or a
// *SpecError. s itself is not changed.
func (s *Spec) prepare() (*Spec, error) {
	c := s.clone()
	c.normalize()
	var ps problems
	c.validate(&ps)
	if err := ps.err(); err != nil {
		return nil, err
	}
	return c, nil
}

func (s *Spec) clone() *Spec {
	c := *s
	c.Cohort.Filters = cloneFilters(s.Cohort.Filters)
	c.Cohort.Features = slices.Clone(s.Cohort.Features)
	if s.Cohort.From != nil {
		t := *s.Cohort.From
		c.Cohort.From = &t
	}
	if s.Cohort.To != nil {
		t := *s.Cohort.To
		c.Cohort.To = &t
	}
	c.Appends = slices.Clone(s.Appends)
	for i := range c.Appends {
		c.Appends[i].Features = slices.Clone(s.Appends[i].Features)
		c.Appends[i].Filters = cloneFilters(s.Appends[i].Filters)
	}
	return &c
}

func cloneFilters(fs []Filter) []Filter {
	out := slices.Clone(fs)
	for i := range out {
		if l, ok := out[i].Value.([]any); ok {
			out[i].Value = slices.Clone(l)
		}
	}
	return out
}

// normalize fills defaults and converts values to their canonical types. It
// keeps every list in the caller's order, so that problem paths point at
// what the caller wrote; canonicalize sorts once the spec is valid.
func (s *Spec) normalize() {
	if s.Limit == 0 {
		s.Limit = DefaultLimit
	}
	c := &s.Cohort
	if c.Occurrence == "" {
		c.Occurrence = OccurrenceAll
	}
	// The warehouse keeps microseconds in UTC: a bound with more
	// precision or another zone means the same rows.
	if c.From != nil {
		t := c.From.UTC().Truncate(time.Microsecond)
		c.From = &t
	}
	if c.To != nil {
		t := c.To.UTC().Truncate(time.Microsecond)
		c.To = &t
	}
	normalizeFilters(c.Filters)
	for i := range s.Appends {
		a := &s.Appends[i]
		if isAggregate(a.Relationship) && a.Aggregate == "" {
			a.Aggregate = AggCount
		}
		// The default prefix only from names that are right, so that a
		// bad relationship or activity is one problem, not two.
		if a.As == "" && slices.Contains(relationships, a.Relationship) && activityRE.MatchString(a.Activity) {
			a.As = a.Relationship + "_" + a.Activity
		}
		normalizeFilters(a.Filters)
	}
}

func normalizeFilters(fs []Filter) {
	for i := range fs {
		fs[i].Value = normalizeValue(fs[i].Value)
	}
}

// normalizeValue converts the Go types a spec built in code may hold to the
// ones Decode produces (string, bool, float64, []any). Anything else is
// left for validate to refuse.
func normalizeValue(v any) any {
	switch v := v.(type) {
	case int:
		return float64(v)
	case int32:
		return float64(v)
	case int64:
		return float64(v)
	case uint32:
		return float64(v)
	case float32:
		return float64(v)
	case json.Number:
		if f, err := v.Float64(); err == nil {
			return f
		}
	case []string:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = e
		}
		return out
	case []float64:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = e
		}
		return out
	case []int:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = float64(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = normalizeValue(e)
		}
		return out
	}
	return v
}

// canonicalize sorts what is order-free: filters are ANDed and "in" values
// are a set.
func (s *Spec) canonicalize() {
	sortFilters(s.Cohort.Filters)
	for i := range s.Appends {
		sortFilters(s.Appends[i].Filters)
	}
}

func sortFilters(fs []Filter) {
	for i := range fs {
		if l, ok := fs[i].Value.([]any); ok {
			slices.SortFunc(l, func(a, b any) int { return strings.Compare(valueKey(a), valueKey(b)) })
			fs[i].Value = slices.CompactFunc(l, func(a, b any) bool { return valueKey(a) == valueKey(b) })
		}
	}
	slices.SortStableFunc(fs, func(a, b Filter) int {
		if c := strings.Compare(a.Feature, b.Feature); c != 0 {
			return c
		}
		if c := strings.Compare(a.Op, b.Op); c != 0 {
			return c
		}
		return strings.Compare(valueKey(a.Value), valueKey(b.Value))
	})
}

func valueKey(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// validate reports everything wrong with a normalized spec. On success it
// canonicalizes s.
func (s *Spec) validate(ps *problems) {
	n0 := len(ps.list) + ps.more
	if s.Limit < 1 || s.Limit > MaxLimit {
		ps.addLimit("limit", limitName(s.Limit > MaxLimit, "MaxLimit"), limitRangeMsg, MaxLimit, s.Limit, DefaultLimit)
	}
	cols := newColumns()
	for _, c := range cohortColumns {
		cols.claim(c, "the dataset's own columns", "", ps)
	}
	s.Cohort.validate(ps, cols)
	if len(s.Appends) > MaxAppends {
		ps.addLimit("append", "MaxAppends", "%d appended activities; at most %d are accepted", len(s.Appends), MaxAppends)
	}
	for i := range s.Appends {
		s.Appends[i].validate(fmt.Sprintf("append[%d]", i), ps, cols)
	}
	if len(ps.list)+ps.more == n0 {
		s.canonicalize()
	}
}

// The messages of limit and cohort.nth out of their range, from validate
// and, for values past 32 bits, from the decoder.
const (
	limitRangeMsg = "must be between 1 and %d, got %v (0 or absent means %d)"
	nthRangeMsg   = "must be between 1 and %d for occurrence \"nth\", got %v"
)

func limitName(hit bool, name string) string {
	if hit {
		return name
	}
	return ""
}

func (c *Cohort) validate(ps *problems, cols *columns) {
	validActivity("cohort.activity", c.Activity, ps)
	switch c.Occurrence {
	case OccurrenceAll, OccurrenceFirst, OccurrenceLast:
		if c.Nth != 0 {
			ps.add("cohort.nth", "is only used with occurrence \"nth\"; occurrence is %q", c.Occurrence)
		}
	case OccurrenceNth:
		if c.Nth == 0 {
			ps.add("cohort.nth", "required for occurrence \"nth\": an integer from 1 to %d", MaxNth)
		} else if c.Nth < 1 || c.Nth > MaxNth {
			ps.addLimit("cohort.nth", limitName(c.Nth > MaxNth, "MaxNth"), nthRangeMsg, MaxNth, c.Nth)
		}
	default:
		ps.add("cohort.occurrence", "unknown occurrence %s (one of: all, first, last, nth)", quote(c.Occurrence))
	}
	for _, w := range []struct {
		path string
		t    *time.Time
	}{{"cohort.from", c.From}, {"cohort.to", c.To}} {
		if w.t != nil && (w.t.Before(minTime) || !w.t.Before(maxTime)) {
			ps.add(w.path, "%s is out of range (1970-01-01 to 9999-12-31)", w.t.Format(time.RFC3339Nano))
		}
	}
	if c.From != nil && c.To != nil && !c.From.Before(*c.To) {
		ps.add("cohort.to", "must be after cohort.from (from is inclusive, to exclusive)")
	}
	validFilters("cohort.filters", c.Filters, ps)
	validFeatures("cohort.features", c.Features, ps, func(i int, f string) {
		cols.claim(f, fmt.Sprintf("cohort.features[%d]", i), fmt.Sprintf("cohort.features[%d]", i), ps)
	})
}

func (a *Append) validate(path string, ps *problems, cols *columns) {
	validActivity(path+".activity", a.Activity, ps)
	rel := a.Relationship
	switch {
	case isFirstLast(rel):
		if a.Aggregate != "" {
			ps.add(path+".aggregate", "is for aggregate_* relationships; %s brings the related row's features", rel)
		}
		if a.Of != "" {
			ps.add(path+".of", "is for aggregate_* relationships; %s brings the related row's features", rel)
		}
	case isAggregate(rel):
		if len(a.Features) > 0 {
			ps.add(path+".features", "is for first_* and last_* relationships; %s brings one aggregate (aggregate, of)", rel)
		}
		switch a.Aggregate {
		case AggCount:
		case AggSum, AggAvg, AggMin, AggMax:
			if a.Of == "" {
				ps.add(path+".of", "required for aggregate %q: revenue_impact or a numeric feature key", a.Aggregate)
			}
		default:
			ps.add(path+".aggregate", "unknown aggregate %s (one of: count, sum, avg, min, max)", quote(a.Aggregate))
		}
		switch {
		case a.Of == "", a.Of == ColRevenueImpact:
		case a.Of == ColLink:
			ps.add(path+".of", "link is not a number; aggregate revenue_impact or a numeric feature key")
		default:
			validIdent(path+".of", a.Of, "a feature key", ps)
		}
	case rel == "":
		ps.add(path+".relationship", "required: one of %s", strings.Join(relationships, ", "))
	default:
		ps.add(path+".relationship", "unknown relationship %s (one of: %s)", quote(rel), strings.Join(relationships, ", "))
	}
	validFilters(path+".filters", a.Filters, ps)
	asOK := true
	if a.As != "" && !identRE.MatchString(a.As) {
		asOK = false
		if len(a.As) > MaxIdentLen && rel != "" && a.As == rel+"_"+a.Activity {
			ps.addLimit(path+".as", "MaxIdentLen", "the default column prefix %s is longer than %d characters; set a shorter \"as\"", quote(a.As), MaxIdentLen)
		} else {
			validIdent(path+".as", a.As, "a column prefix", ps)
		}
	}
	if isFirstLast(rel) {
		if asOK && a.As != "" {
			cols.claim(a.As+"_ts", path+".as", path+".as", ps)
		}
		validFeatures(path+".features", a.Features, ps, func(i int, f string) {
			if asOK && a.As != "" {
				p := fmt.Sprintf("%s.features[%d]", path, i)
				cols.claim(a.As+"_"+f, p, p, ps)
			}
		})
	}
	if isAggregate(rel) && asOK && a.As != "" && (a.Aggregate == AggCount || a.Aggregate == AggSum ||
		a.Aggregate == AggAvg || a.Aggregate == AggMin || a.Aggregate == AggMax) {
		cols.claim(a.As+"_"+a.Aggregate, path+".as", path+".as", ps)
	}
}

func validActivity(path, s string, ps *problems) {
	switch {
	case s == "":
		ps.add(path, "required: an activity name (verb_noun, e.g. called_tool)")
	case len(s) > MaxNameLen:
		ps.addLimit(path, "MaxNameLen", "is %d bytes; an activity name is at most %d", len(s), MaxNameLen)
	case !activityRE.MatchString(s):
		ps.add(path, "%s is not an activity name (verb_noun: lowercase letters and digits in words joined by _, e.g. called_tool)", quote(s))
	}
}

// validIdent checks a feature key or a column prefix.
func validIdent(path, s, what string, ps *problems) bool {
	if identRE.MatchString(s) {
		return true
	}
	switch {
	case s == "":
		ps.add(path, "must not be empty: %s (letters, digits and _, not starting with a digit)", what)
	case len(s) > MaxIdentLen:
		ps.addLimit(path, "MaxIdentLen", "is %d bytes; %s is at most %d", len(s), what, MaxIdentLen)
	case !identRE.MatchString(s):
		ps.add(path, "%s is not %s (letters, digits and _, not starting with a digit, at most %d)", quote(s), what, MaxIdentLen)
	}
	return false
}

func validFeatures(path string, fs []string, ps *problems, claim func(i int, f string)) {
	if len(fs) > MaxFeatures {
		ps.addLimit(path, "MaxFeatures", "%d features; at most %d are accepted", len(fs), MaxFeatures)
		return
	}
	for i, f := range fs {
		p := fmt.Sprintf("%s[%d]", path, i)
		if f == ColRevenueImpact || f == ColLink {
			claim(i, f)
			continue
		}
		if validIdent(p, f, "a feature key", ps) {
			claim(i, f)
		}
	}
}

func validFilters(path string, fs []Filter, ps *problems) {
	if len(fs) > MaxFilters {
		ps.addLimit(path, "MaxFilters", "%d filters; at most %d are accepted", len(fs), MaxFilters)
		return
	}
	for i, f := range fs {
		p := fmt.Sprintf("%s[%d]", path, i)
		if f.Feature != ColRevenueImpact && f.Feature != ColLink {
			validIdent(p+".feature", f.Feature, "a feature key", ps)
		}
		validFilterValue(p, f, ps)
	}
}

// valueKinds says which value types an operator takes.
var valueKinds = map[string]string{
	OpEq: "snb", OpNe: "snb", OpGt: "sn", OpGte: "sn", OpLt: "sn", OpLte: "sn", OpContains: "s", OpIn: "l",
}

func validFilterValue(p string, f Filter, ps *problems) {
	kinds, ok := valueKinds[f.Op]
	if !ok {
		if f.Op == "" {
			ps.add(p+".op", "required: one of eq, ne, gt, gte, lt, lte, contains, in")
		} else {
			ps.add(p+".op", "unknown operator %s (one of: eq, ne, gt, gte, lt, lte, contains, in)", quote(f.Op))
		}
		return
	}
	vp := p + ".value"
	// The columns have one type each: revenue_impact is a number, link
	// text.
	switch f.Feature {
	case ColRevenueImpact:
		kinds = strings.ReplaceAll(strings.ReplaceAll(kinds, "s", ""), "b", "")
	case ColLink:
		kinds = strings.ReplaceAll(strings.ReplaceAll(kinds, "n", ""), "b", "")
	}
	if kinds == "" {
		ps.add(p+".op", "%s cannot be used on %s", quote(f.Op), f.Feature)
		return
	}
	switch v := f.Value.(type) {
	case string:
		if !strings.Contains(kinds, "s") {
			ps.add(vp, "must be %s for op %q, got a string", kindWords(kinds), f.Op)
			return
		}
		validString(vp, v, ps)
		if f.Op == OpContains && v == "" {
			ps.add(vp, "must not be empty for op \"contains\"")
		}
	case float64:
		if !strings.Contains(kinds, "n") {
			ps.add(vp, "must be %s for op %q, got a number", kindWords(kinds), f.Op)
		} else if math.IsNaN(v) || math.IsInf(v, 0) {
			ps.add(vp, "must be a finite number")
		}
	case bool:
		if !strings.Contains(kinds, "b") {
			ps.add(vp, "must be %s for op %q, got a boolean", kindWords(kinds), f.Op)
		}
	case []any:
		if kinds != "l" {
			ps.add(vp, "must be %s for op %q, got an array (arrays are for op \"in\")", kindWords(kinds), f.Op)
			return
		}
		switch {
		case len(v) == 0:
			ps.add(vp, "must hold at least one value for op \"in\"")
			return
		case len(v) > MaxInValues:
			ps.addLimit(vp, "MaxInValues", "%d values; at most %d are accepted", len(v), MaxInValues)
			return
		}
		var sawS, sawN bool
		for i, e := range v {
			ep := fmt.Sprintf("%s[%d]", vp, i)
			switch e := e.(type) {
			case string:
				sawS = true
				validString(ep, e, ps)
				if f.Feature == ColRevenueImpact {
					ps.add(ep, "must be a number: revenue_impact is a number")
				}
			case float64:
				sawN = true
				if math.IsNaN(e) || math.IsInf(e, 0) {
					ps.add(ep, "must be a finite number")
				}
				if f.Feature == ColLink {
					ps.add(ep, "must be a string: link is text")
				}
			default:
				ps.add(ep, "must be a string or a number, got %s", typeWord(e))
			}
		}
		if sawS && sawN {
			ps.add(vp, "mixes strings and numbers; an \"in\" list holds one kind")
		}
	case nil:
		ps.add(vp, "required: %s", kindWords(kinds))
	default:
		ps.add(vp, "must be %s, got %s", kindWords(kinds), typeWord(v))
	}
}

func validString(p, s string, ps *problems) {
	switch {
	case len(s) > MaxValueLen:
		ps.addLimit(p, "MaxValueLen", "is %d bytes; a filter value is at most %d", len(s), MaxValueLen)
	case !utf8.ValidString(s):
		ps.add(p, "is not valid UTF-8")
	case strings.IndexByte(s, 0) >= 0:
		// The warehouses' text types cannot hold NUL, so no feature
		// value contains one.
		ps.add(p, "must not contain a NUL character")
	}
}

func kindWords(kinds string) string {
	var w []string
	for _, k := range kinds {
		switch k {
		case 's':
			w = append(w, "a string")
		case 'n':
			w = append(w, "a number")
		case 'b':
			w = append(w, "a boolean")
		case 'l':
			w = append(w, "an array of strings or of numbers")
		}
	}
	switch len(w) {
	case 1:
		return w[0]
	case 2:
		return w[0] + " or " + w[1]
	}
	return strings.Join(w[:len(w)-1], ", ") + " or " + w[len(w)-1]
}

func typeWord(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case float64:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("a Go %T", v)
}

// columns tracks output column names, case-insensitively (DuckDB and
// Snowflake resolve names that way).
type columns struct {
	by map[string]string // lower-case name -> who claimed it
}

func newColumns() *columns { return &columns{by: map[string]string{}} }

// claim takes name for owner; a second claim is reported at path. Appended
// columns can be renamed with "as"; cohort features cannot.
func (c *columns) claim(name, owner, path string, ps *problems) {
	l := strings.ToLower(name)
	if prev, ok := c.by[l]; ok {
		hint := `set a different "as"`
		if strings.HasPrefix(path, "cohort.") {
			hint = "a cohort feature is named by its key; activity_id, ts and customer are always columns"
		}
		ps.add(path, "column %q is already taken by %s; column names must be unique (%s)", name, prev, hint)
		return
	}
	c.by[l] = owner
}
