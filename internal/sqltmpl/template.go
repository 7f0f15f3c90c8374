package sqltmpl

import (
	"encoding/json"
	"regexp"
	"time"
)

// Dialect is the SQL dialect a template renders for.
type Dialect string

// The dialects every template is written in.
const (
	DuckDB    Dialect = "duckdb"
	Snowflake Dialect = "snowflake"
)

// Dialects lists every dialect, in the order template files hold them.
var Dialects = []Dialect{DuckDB, Snowflake}

// ParamType is the type of a template parameter.
type ParamType = string

// Parameter types. Values arrive as JSON and are bound as Go values:
const (
	TypeString    ParamType = "string"    // JSON string; bound as string
	TypeInt       ParamType = "int"       // JSON integer; bound as int64
	TypeFloat     ParamType = "float"     // JSON number; bound as float64
	TypeBool      ParamType = "bool"      // JSON true/false; bound as bool
	TypeTimestamp ParamType = "timestamp" // RFC 3339 or YYYY-MM-DD (UTC); bound as time.Time (UTC, microseconds)
	TypeDuration  ParamType = "duration"  // "90s", "15m", "2h", "1d12h" or a number of seconds; bound as float64 seconds
	TypeEnum      ParamType = "enum"      // one of Values; chooses a slot's fragment, or is bound as string
)

var paramTypes = map[ParamType]bool{
	TypeString: true, TypeInt: true, TypeFloat: true, TypeBool: true,
	TypeTimestamp: true, TypeDuration: true, TypeEnum: true,
}

// Limits of parameters and templates. Every refusal because of one is
// counted in activitybi_sqltmpl_rejections_total.
const (
	// MaxParamsBytes bounds the JSON object of one Render call. The
	// largest legitimate object (every parameter at its longest) is a few
	// KiB; anything bigger is a mistake or an attack, refused before it is
	// parsed.
	MaxParamsBytes = 16 << 10
	// DefaultMaxLen is the longest string parameter, in characters, when a
	// parameter sets no MaxLen: the ActivitySchema string limit, so no
	// stored value is longer.
	DefaultMaxLen = 255
	// MaxMaxLen bounds a parameter's own MaxLen.
	MaxMaxLen = 4096
	// MaxWindowDays is the longest window a template may read, in days
	// (ten years): with the timeout and the engine's result cap it keeps
	// one question from scanning without end, and it is longer than any
	// history activitybi has.
	MaxWindowDays = 3660
	// MaxBuckets bounds the time buckets of one window (e.g. hour buckets
	// over 200 days are 4,800): more points than any chart can show, and
	// more rows than an answer to Claude should carry.
	MaxBuckets = 5000
	// MaxTimeout is the longest timeout a template may declare.
	MaxTimeout = 5 * time.Minute
	// DefaultTimeout is a template's timeout when its metadata sets none.
	DefaultTimeout = 30 * time.Second
)

// Range of timestamp parameters: the warehouse holds nothing before 1970
// (event validation), and a date past 2200 is a typo.
var (
	MinTimestamp = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	MaxTimestamp = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

// Param is one parameter of a template.
type Param struct {
	Name        string    `json:"name"`
	Type        ParamType `json:"type"`
	Description string    `json:"description"`
	// Default is the value used when the parameter is absent (its
	// normalized form: int64, float64, bool, string, or a duration string).
	// nil means the parameter is required, unless Optional.
	Default any `json:"default,omitempty"`
	// Optional parameters without a default may be left out: a string is
	// then bound as "" (templates read "" as "no filter").
	Optional bool `json:"optional,omitempty"`
	// Min and Max bound int, float and duration (in seconds) values.
	Min *float64 `json:"min,omitempty"`
	Max *float64 `json:"max,omitempty"`
	// MaxLen bounds string values in characters; 0 means DefaultMaxLen.
	MaxLen int `json:"max_len,omitempty"`
	// Pattern, if set, is a regular expression every string value must
	// match (e.g. the verb_noun form of activity names).
	Pattern string `json:"pattern,omitempty"`
	// Values is the allow-list of an enum. An enum used as a slot maps
	// each value to a fixed SQL fragment per dialect; the value itself is
	// never spliced into SQL.
	Values []string `json:"values,omitempty"`

	pattern   *regexp.Regexp
	fragments map[Dialect]map[string]string // enum slot fragments
	window    bool                          // one of the window parameters
}

// Column describes one result column: what Claude reads and the card plots.
type Column struct {
	Name        string `json:"name"`
	Type        string `json:"type"` // DuckDB type name: VARCHAR, BIGINT, DOUBLE, TIMESTAMP, BOOLEAN
	Description string `json:"description"`
}

// Card kinds a template may suggest.
const (
	CardLine        = "line"
	CardBar         = "bar"
	CardStackedBar  = "stacked_bar"
	CardTable       = "table"
	CardKPI         = "kpi"
	CardHeatmap     = "heatmap"
	defaultCardKind = CardTable
)

var cardKinds = map[string]bool{CardLine: true, CardBar: true, CardStackedBar: true, CardTable: true, CardKPI: true, CardHeatmap: true}

// CardDefault is the card a template's result is drawn as unless the
// caller asks for another: the kind, the column on the x axis, the value
// columns, and the column whose values make separate series (empty for
// one series). Every named column is one of the template's Columns.
type CardDefault struct {
	Kind   string   `json:"kind"`
	X      string   `json:"x,omitempty"`
	Y      []string `json:"y,omitempty"`
	Series string   `json:"series,omitempty"`
}

// Template is one SafeSQL template: its metadata, for Claude, the CLI and
// the card renderer. The per-dialect SQL is internal; Render produces it.
type Template struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	// Reads says which activities and features the template reads, so
	// that a person can tell why a result is empty.
	Reads   string        `json:"reads"`
	Params  []Param       `json:"params"`
	Timeout time.Duration `json:"-"` // default and maximum for this template
	Columns []Column      `json:"columns"`
	Card    CardDefault   `json:"card"`

	window  *windowSpec
	bucket  *bucketSpec
	sql     map[Dialect]*compiled
	byName  map[string]*Param
	file    string
	accepts string // the parameter names, for error messages
}

// MarshalJSON describes the template with its timeout in seconds.
func (t *Template) MarshalJSON() ([]byte, error) {
	type plain Template
	return json.Marshal(struct {
		*plain
		TimeoutSeconds float64 `json:"timeout_seconds"`
	}{(*plain)(t), t.Timeout.Seconds()})
}

// Param returns the named parameter, or nil.
func (t *Template) Param(name string) *Param { return t.byName[name] }

// Windowed reports whether the template has the window parameters (days,
// from, to).
func (t *Template) Windowed() bool { return t.window != nil }

// Signature is a one-line summary of the parameters, e.g.
// "days=7 from? to? tool? limit=50".
func (t *Template) Signature() string {
	var b []byte
	for i, p := range t.Params {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, p.Name...)
		switch {
		case p.Default != nil:
			b = append(b, '=')
			b = append(b, formatValue(p.Default)...)
		case p.Optional:
			b = append(b, '?')
		}
	}
	return string(b)
}

// SQL returns the template's SQL for d as written, with $name values and
// slots at their defaults: for reading, not for running (Render is).
func (t *Template) SQL(d Dialect) (string, bool) {
	c, ok := t.sql[d]
	if !ok {
		return "", false
	}
	return c.source, true
}

// windowSpec is a template's `window:` metadata.
type windowSpec struct {
	Days    int `yaml:"days"`     // default days
	MaxDays int `yaml:"max_days"` // default MaxWindowDays
}

// bucketSpec is a template's `bucket:` metadata.
type bucketSpec struct {
	Default string `yaml:"default"`
}

// bucketSizes are the time buckets and their (longest) lengths, for the
// bucket-count limit.
var bucketSizes = map[string]time.Duration{
	"hour":  time.Hour,
	"day":   24 * time.Hour,
	"week":  7 * 24 * time.Hour,
	"month": 28 * 24 * time.Hour, // the shortest month: an upper bound on the count
}

var bucketValues = []string{"hour", "day", "week", "month"}

// Names of the derived values a windowed template may use.
const (
	bindWindowStart = "window_start"
	bindWindowEnd   = "window_end"
	bindPrevStart   = "prev_start"
)

// Names of the window and bucket parameters.
const (
	paramDays   = "days"
	paramFrom   = "from"
	paramTo     = "to"
	paramBucket = "bucket"
)
