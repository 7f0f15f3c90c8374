package dataset

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Limits on a spec. Each is part of the contract with the caller (an LLM
// through submit_query, or an analyst): a spec that exceeds one is refused
// with a Problem naming the limit, and Metrics counts it.
const (
	// MaxSpecBytes bounds the raw JSON Decode accepts. A dataset of ten
	// appends with a few filters and features each is a few KiB; this
	// bounds the parse and the statement (not every list at its limit
	// fits).
	MaxSpecBytes = 64 << 10
	// MaxDepth bounds JSON nesting. A spec nests 6 deep at most
	// (spec.append[i].filters[j].value[k]); deeper input is not a spec
	// and must not cost a deep recursion.
	MaxDepth = 8
	// MaxAppends bounds appended activities: each costs a join (and for
	// sweeps a sort) of the stream.
	MaxAppends = 10
	// MaxFilters bounds the feature filters of one activity.
	MaxFilters = 16
	// MaxFeatures bounds the features one activity brings as columns.
	MaxFeatures = 32
	// MaxInValues bounds the values of one "in" filter.
	MaxInValues = 100
	// MaxValueLen bounds a filter's string value, in bytes. Feature values
	// are free text inside feature_json, so it is larger than the 255
	// characters of a column.
	MaxValueLen = 1024
	// MaxNameLen bounds an activity name, in bytes (the stream's column
	// limit, event.MaxStringLen; activity names are ASCII).
	MaxNameLen = 255
	// MaxIdentLen bounds a feature key and an "as" prefix: they become
	// (parts of) column names.
	MaxIdentLen = 64
	// MaxNth bounds cohort.nth.
	MaxNth = 1_000_000
	// DefaultLimit is the row limit of a spec that gives none.
	DefaultLimit = 1000
	// MaxLimit bounds spec.limit. The query engine's byte cap applies on
	// top of it.
	MaxLimit = 100_000
	// maxProblems bounds the problems one error lists; the rest are
	// counted in its message.
	maxProblems = 20
)

// Window bounds (cohort.from, cohort.to) must lie in [minTime, maxTime): the
// stream holds nothing earlier (event validation) and later is a typo.
var (
	minTime = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
)

// Spec is an ActivitySchema dataset: one row per cohort activity row, with
// columns appended from other activities of the same customer.
type Spec struct {
	Cohort  Cohort   `json:"cohort"`
	Appends []Append `json:"append,omitempty"`
	// Limit is the most rows the dataset returns, in (customer, ts,
	// activity_id) order. 0 means DefaultLimit; at most MaxLimit.
	Limit int `json:"limit,omitempty"`
}

// Cohort selects the rows of the dataset.
type Cohort struct {
	// Activity is the cohort activity (verb_noun).
	Activity string `json:"activity"`
	// Occurrence selects which rows of the activity, per customer: "all"
	// (the default), "first", "last" or "nth" (Nth). Occurrences are
	// counted among the rows that pass Filters, before the time window
	// applies: "first" with a window is the customer's first occurrence,
	// if it falls in the window.
	Occurrence string `json:"occurrence,omitempty"`
	// Nth is the 1-based occurrence for Occurrence "nth"; otherwise 0.
	Nth int `json:"nth,omitempty"`
	// From (inclusive) and To (exclusive) bound the cohort rows' ts.
	From *time.Time `json:"from,omitempty"`
	To   *time.Time `json:"to,omitempty"`
	// Filters keep only rows whose features pass all of them.
	Filters []Filter `json:"filters,omitempty"`
	// Features are feature keys (or revenue_impact, link) to bring as
	// columns, named by the key.
	Features []string `json:"features,omitempty"`
}

// Filter compares one feature of a row with a value. The feature is read
// as text; a number value compares numerically (a feature that is not a
// number does not match), a string or boolean value compares the text.
type Filter struct {
	Feature string `json:"feature"`
	// Op is eq, ne, gt, gte, lt, lte, contains or in. ne also matches rows
	// that lack the feature.
	Op string `json:"op"`
	// Value is a string, number or boolean; for "in" a list of strings or
	// of numbers; for "contains" a string.
	Value any `json:"value"`
}

// Append brings columns from another activity (or the cohort activity
// itself) of the same customer, related to each cohort row by
// Relationship. An append never duplicates or drops cohort rows: a cohort
// row with no related row gets NULLs (a count gets 0).
type Append struct {
	Activity string `json:"activity"`
	// Relationship is one of Relationships().
	Relationship string `json:"relationship"`
	// Features are feature keys (or revenue_impact, link) of the related
	// row to bring, for first_* and last_* relationships. The related
	// row's ts is always brought, as <as>_ts.
	Features []string `json:"features,omitempty"`
	// Aggregate is count (the default), sum, avg, min or max, for
	// aggregate_* relationships; the column is <as>_<aggregate>.
	Aggregate string `json:"aggregate,omitempty"`
	// Of is what to aggregate: revenue_impact or a feature key (read as a
	// number). Required for sum, avg, min and max; with count it counts
	// the rows that have the feature.
	Of string `json:"of,omitempty"`
	// Filters keep only rows of Activity whose features pass all of them.
	Filters []Filter `json:"filters,omitempty"`
	// As is the column prefix; default <relationship>_<activity>.
	As string `json:"as,omitempty"`
}

// Occurrence modes of a cohort.
const (
	OccurrenceAll   = "all"
	OccurrenceFirst = "first"
	OccurrenceLast  = "last"
	OccurrenceNth   = "nth"
)

// Relationships, as in ActivitySchema datasets (dbt-activity-schema's
// names). "Before" and "after" compare ts strictly; "in between" is after
// the cohort row and at or before the next row of the cohort activity
// (among rows that pass the cohort's filters), or after it with no end for
// the customer's last one. First and last order rows by (ts, activity_id).
const (
	FirstEver          = "first_ever"
	LastEver           = "last_ever"
	FirstBefore        = "first_before"
	LastBefore         = "last_before"
	FirstAfter         = "first_after"
	LastAfter          = "last_after"
	FirstInBetween     = "first_in_between"
	LastInBetween      = "last_in_between"
	AggregateBefore    = "aggregate_before"
	AggregateAfter     = "aggregate_after"
	AggregateInBetween = "aggregate_in_between"
	AggregateAllEver   = "aggregate_all_ever"
)

// relationships lists the relationship names in the order messages show
// them.
var relationships = []string{FirstEver, LastEver, FirstBefore, LastBefore, FirstAfter, LastAfter,
	FirstInBetween, LastInBetween, AggregateBefore, AggregateAfter, AggregateInBetween, AggregateAllEver}

// Relationships lists the relationship names.
func Relationships() []string { return append([]string(nil), relationships...) }

// Aggregates.
const (
	AggCount = "count"
	AggSum   = "sum"
	AggAvg   = "avg"
	AggMin   = "min"
	AggMax   = "max"
)

// Filter operators.
const (
	OpEq       = "eq"
	OpNe       = "ne"
	OpGt       = "gt"
	OpGte      = "gte"
	OpLt       = "lt"
	OpLte      = "lte"
	OpContains = "contains"
	OpIn       = "in"
)

// Column names that Features (and Of, for revenue_impact) may name instead
// of a feature key. A feature_json key with one of these names cannot be
// brought: the column wins.
const (
	ColRevenueImpact = "revenue_impact"
	ColLink          = "link"
)

// ErrInvalidSpec is wrapped by every error about a spec's content.
var ErrInvalidSpec = errors.New("invalid dataset spec")

// Problem is one thing wrong with a spec.
type Problem struct {
	// Path is the JSON path of the field, e.g. append[1].filters[0].op;
	// "" for the spec as a whole.
	Path string
	// Msg says what is wrong and what is accepted.
	Msg string
	// Limit names the limit constant the spec exceeds (e.g.
	// "MaxAppends"), or "".
	Limit string
}

func (p Problem) String() string {
	if p.Path == "" {
		return p.Msg
	}
	return p.Path + ": " + p.Msg
}

// SpecError lists every problem found in a spec, so that all can be fixed
// at once. It wraps ErrInvalidSpec.
type SpecError struct {
	Problems []Problem
	// More counts problems found beyond the ones listed.
	More int
}

func (e *SpecError) Error() string {
	var b strings.Builder
	b.WriteString(ErrInvalidSpec.Error())
	b.WriteString(": ")
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.String())
	}
	if e.More > 0 {
		fmt.Fprintf(&b, "; and %d more", e.More)
	}
	return b.String()
}

func (e *SpecError) Unwrap() error { return ErrInvalidSpec }

// problems collects the problems of one spec. Only the first problem at a
// path or under it is kept: a field of the wrong type is left empty, and
// "required" on top of "must be a string" (or "cohort.activity: required"
// under "cohort: required") would only confuse.
type problems struct {
	list []Problem
	more int
	seen map[string]bool
}

func (ps *problems) add(path, format string, args ...any) {
	ps.addLimit(path, "", format, args...)
}

func (ps *problems) addLimit(path, limit, format string, args ...any) {
	if ps.covered(path) {
		return
	}
	if ps.seen == nil {
		ps.seen = map[string]bool{}
	}
	ps.seen[path] = true
	if len(ps.list) >= maxProblems {
		ps.more++
		return
	}
	ps.list = append(ps.list, Problem{Path: path, Msg: fmt.Sprintf(format, args...), Limit: limit})
}

// covered reports whether path or a path above it has a problem.
func (ps *problems) covered(path string) bool {
	if ps.seen[path] {
		return true
	}
	for i := 1; i < len(path); i++ {
		if (path[i] == '.' || path[i] == '[') && ps.seen[path[:i]] {
			return true
		}
	}
	return false
}

func (ps *problems) err() error {
	if len(ps.list) == 0 {
		return nil
	}
	return &SpecError{Problems: ps.list, More: ps.more}
}

// quote shows a caller's string in a message: quoted, and cut short so that
// a huge or hostile value cannot flood the error.
func quote(s string) string {
	const show = 40
	if len(s) > show {
		cut := show
		for cut > 0 && !isRuneStart(s[cut]) {
			cut--
		}
		return fmt.Sprintf("%q...", s[:cut])
	}
	return fmt.Sprintf("%q", s)
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
