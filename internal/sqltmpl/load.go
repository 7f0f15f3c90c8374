package sqltmpl

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"
)

//go:embed templates/*.sql
var embedded embed.FS

// Library is a loaded, checked set of templates. It is immutable and safe
// for concurrent use.
type Library struct {
	list    []*Template
	byName  map[string]*Template
	names   string // comma-separated, for errors
	metrics *metrics
}

// Load parses and checks the embedded templates.
func Load() (*Library, error) {
	sub, err := fs.Sub(embedded, "templates")
	if err != nil {
		return nil, err
	}
	return LoadFS(sub)
}

var (
	defaultOnce sync.Once
	defaultLib  *Library
)

// Default is the embedded library, loaded once. It panics if the embedded
// templates do not load, which the package's tests rule out.
func Default() *Library {
	defaultOnce.Do(func() {
		l, err := Load()
		if err != nil {
			panic("sqltmpl: embedded templates: " + err.Error())
		}
		defaultLib = l
	})
	return defaultLib
}

// LoadFS parses and checks every *.sql file at the top of fsys. Every
// template's problems are reported, not only the first.
func LoadFS(fsys fs.FS) (*Library, error) {
	files, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, errors.New("sqltmpl: no templates (*.sql) found")
	}
	l := &Library{byName: make(map[string]*Template, len(files)), metrics: newMetrics()}
	var errs []error
	for _, f := range files {
		b, err := fs.ReadFile(fsys, f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		t, err := parseTemplate(f, b)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f, err))
			continue
		}
		l.list = append(l.list, t)
		l.byName[t.Name] = t
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("sqltmpl: %w", errors.Join(errs...))
	}
	sort.Slice(l.list, func(i, j int) bool { return l.list[i].Name < l.list[j].Name })
	names := make([]string, len(l.list))
	for i, t := range l.list {
		names[i] = t.Name
	}
	l.names = strings.Join(names, ", ")
	return l, nil
}

// List returns the templates sorted by name (a new slice each call). The
// templates themselves are shared: callers must not modify them.
func (l *Library) List() []*Template { return append([]*Template(nil), l.list...) }

// Get returns the named template, or an *UnknownTemplateError (wrapping
// ErrUnknownTemplate) that lists the names there are.
func (l *Library) Get(name string) (*Template, error) {
	if t, ok := l.byName[name]; ok {
		return t, nil
	}
	return nil, &UnknownTemplateError{Name: name, Known: l.names}
}

// meta is the YAML header of a template file.
type meta struct {
	Name        string      `yaml:"name"`
	Description string      `yaml:"description"`
	Reads       string      `yaml:"reads"`
	Timeout     string      `yaml:"timeout"`
	Window      *windowSpec `yaml:"window"`
	Bucket      *bucketSpec `yaml:"bucket"`
	Params      []metaParam `yaml:"params"`
	Columns     []struct {
		Name        string `yaml:"name"`
		Type        string `yaml:"type"`
		Description string `yaml:"description"`
	} `yaml:"columns"`
	Card struct {
		Kind   string   `yaml:"kind"`
		X      string   `yaml:"x"`
		Y      []string `yaml:"y"`
		Series string   `yaml:"series"`
	} `yaml:"card"`
}

type metaParam struct {
	Name        string   `yaml:"name"`
	Type        string   `yaml:"type"`
	Description string   `yaml:"description"`
	Default     any      `yaml:"default"`
	Optional    bool     `yaml:"optional"`
	Min         *float64 `yaml:"min"`
	Max         *float64 `yaml:"max"`
	MaxLen      int      `yaml:"max_len"`
	Pattern     string   `yaml:"pattern"`
	Values      []string `yaml:"values"`
	// Fragments maps a dialect ("duckdb", "snowflake", or "all" for
	// both) to each enum value's SQL fragment.
	Fragments map[string]map[string]string `yaml:"fragments"`
}

// Column types a template may declare: the DuckDB names the driver
// reports, so that the executed result can be checked against them.
var columnTypes = map[string]bool{"VARCHAR": true, "BIGINT": true, "DOUBLE": true, "TIMESTAMP": true, "BOOLEAN": true}

// dialectLine starts a dialect section.
var dialectLine = regexp.MustCompile(`(?m)^-- dialect: ([a-z]+)[ \t]*$`)

// MinDescriptionLen keeps descriptions long enough for Claude to choose.
const minDescriptionLen = 60

func parseTemplate(file string, b []byte) (*Template, error) {
	src := string(b)
	rest := strings.TrimLeft(src, " \t\r\n")
	if !strings.HasPrefix(rest, "/*") {
		return nil, errors.New("a template starts with its metadata in a /* ... */ comment")
	}
	end := strings.Index(rest, "*/")
	if end < 0 {
		return nil, errors.New("the metadata comment is not closed")
	}
	header, body := rest[2:end], rest[end+2:]

	var m meta
	dec := yaml.NewDecoder(strings.NewReader(header))
	dec.KnownFields(true)
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	t := &Template{
		Name: m.Name, Description: strings.TrimSpace(m.Description), Reads: strings.TrimSpace(m.Reads),
		Timeout: DefaultTimeout, window: m.Window, bucket: m.Bucket,
		sql: map[Dialect]*compiled{}, byName: map[string]*Param{}, file: file,
	}
	if want := strings.TrimSuffix(path.Base(file), ".sql"); m.Name != want {
		bad("name %q must be the file's name %q", m.Name, want)
	}
	if !validName(m.Name) {
		bad("name %q is not lowercase snake_case", m.Name)
	}
	if len(t.Description) < minDescriptionLen {
		bad("description is %d characters; write at least %d so that Claude can tell when to use it", len(t.Description), minDescriptionLen)
	}
	if t.Reads == "" {
		bad("reads: say which activities and features the template reads")
	}
	if m.Timeout != "" {
		d, err := time.ParseDuration(m.Timeout)
		switch {
		case err != nil:
			bad("timeout: %v", err)
		case d <= 0 || d > MaxTimeout:
			bad("timeout %s must be positive and at most %s", d, MaxTimeout)
		default:
			t.Timeout = d
		}
	}

	// Parameters: the window's and the bucket's first, then the template's.
	var params []Param
	if w := m.Window; w != nil {
		if w.MaxDays == 0 {
			w.MaxDays = MaxWindowDays
		}
		if w.MaxDays < 1 || w.MaxDays > MaxWindowDays {
			bad("window.max_days %d must be between 1 and %d", w.MaxDays, MaxWindowDays)
		}
		if w.Days < 1 || w.Days > w.MaxDays {
			bad("window.days %d must be between 1 and window.max_days (%d)", w.Days, w.MaxDays)
		}
		params = append(params, windowParams(w)...)
	}
	if bk := m.Bucket; bk != nil {
		if _, ok := bucketSizes[bk.Default]; !ok {
			bad("bucket.default %q is not one of %s", bk.Default, strings.Join(bucketValues, ", "))
		}
		if m.Window == nil {
			bad("bucket needs window: buckets divide a window")
		}
		params = append(params, bucketParam(bk))
	}
	for _, mp := range m.Params {
		p, err := newParam(mp)
		if err != nil {
			bad("param %s: %w", mp.Name, err)
			continue
		}
		params = append(params, p)
	}
	t.Params = params
	names := make([]string, 0, len(params))
	for i := range t.Params {
		p := &t.Params[i]
		if _, dup := t.byName[p.Name]; dup {
			bad("param %s is declared twice (days, from, to and bucket come with window: and bucket:)", p.Name)
			continue
		}
		if p.Name == bindWindowStart || p.Name == bindWindowEnd || p.Name == bindPrevStart {
			bad("param %s: the name is reserved for a derived value", p.Name)
		}
		t.byName[p.Name] = p
		names = append(names, p.Name)
	}
	t.accepts = strings.Join(names, ", ")

	// Columns and card.
	cols := map[string]bool{}
	for _, c := range m.Columns {
		switch {
		case !validName(c.Name):
			bad("column %q is not lowercase snake_case", c.Name)
		case cols[c.Name]:
			bad("column %s is declared twice", c.Name)
		case !columnTypes[c.Type]:
			bad("column %s: type %q is not one of BIGINT, BOOLEAN, DOUBLE, TIMESTAMP, VARCHAR", c.Name, c.Type)
		case strings.TrimSpace(c.Description) == "":
			bad("column %s has no description", c.Name)
		}
		cols[c.Name] = true
		t.Columns = append(t.Columns, Column{Name: c.Name, Type: c.Type, Description: strings.TrimSpace(c.Description)})
	}
	if len(t.Columns) == 0 {
		bad("columns: declare the result's columns")
	}
	t.Card = CardDefault{Kind: m.Card.Kind, X: m.Card.X, Y: m.Card.Y, Series: m.Card.Series}
	if t.Card.Kind == "" {
		t.Card.Kind = defaultCardKind
	}
	if !cardKinds[t.Card.Kind] {
		bad("card.kind %q is not one of bar, heatmap, kpi, line, stacked_bar, table", t.Card.Kind)
	}
	for _, c := range append([]string{t.Card.X, t.Card.Series}, t.Card.Y...) {
		if c != "" && !cols[c] {
			bad("card names column %q, which is not a column", c)
		}
	}
	if t.Card.Kind != CardTable && t.Card.Kind != CardKPI && (t.Card.X == "" || len(t.Card.Y) == 0) {
		bad("card.kind %s needs x and y", t.Card.Kind)
	}

	// SQL sections.
	if strings.TrimSpace(body[:firstIndex(dialectLine, body)]) != "" {
		bad("text between the metadata and the first -- dialect: line")
	}
	locs := dialectLine.FindAllStringSubmatchIndex(body, -1)
	for i, loc := range locs {
		d := Dialect(body[loc[2]:loc[3]])
		sectionEnd := len(body)
		if i+1 < len(locs) {
			sectionEnd = locs[i+1][0]
		}
		section := strings.TrimSpace(body[loc[1]:sectionEnd])
		if !knownDialect(d) {
			bad("-- dialect: %s is not one of duckdb, snowflake", d)
			continue
		}
		if _, dup := t.sql[d]; dup {
			bad("two %s sections", d)
			continue
		}
		c, err := compileSQL(section)
		if err != nil {
			bad("%s: %w", d, err)
			continue
		}
		t.sql[d] = c
	}
	for _, d := range Dialects {
		c, ok := t.sql[d]
		if !ok {
			bad("no %s section (-- dialect: %s)", d, d)
			continue
		}
		errs = append(errs, checkUsage(t, d, c)...)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return t, nil
}

func firstIndex(re *regexp.Regexp, s string) int {
	if loc := re.FindStringIndex(s); loc != nil {
		return loc[0]
	}
	return len(s)
}

func knownDialect(d Dialect) bool {
	for _, k := range Dialects {
		if k == d {
			return true
		}
	}
	return false
}

// checkUsage holds a dialect's SQL to the metadata: every $value and slot
// is declared, every declared parameter is used, every slot has a fragment
// for every value.
func checkUsage(t *Template, d Dialect, c *compiled) []error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{d}, args...)...))
	}
	used := map[string]bool{}
	for _, name := range c.binds {
		used[name] = true
		switch name {
		case bindWindowStart, bindWindowEnd, bindPrevStart:
			if t.window == nil {
				bad("$%s needs window: in the metadata", name)
			}
			continue
		}
		p := t.byName[name]
		switch {
		case p == nil:
			bad("$%s is not a parameter (parameters: %s)", name, t.accepts)
		case p.window:
			bad("$%s: use $window_start and $window_end; days, from and to only define them", name)
		case p.fragments != nil:
			bad("$%s: enum %s maps to SQL fragments, so it is a slot: /* SLOT: %s */ ... /* END */", name, name, name)
		}
	}
	for name := range c.slots {
		used[name] = true
		p := t.byName[name]
		switch {
		case p == nil:
			bad("slot %s is not a parameter (parameters: %s)", name, t.accepts)
		case p.fragments == nil:
			bad("slot %s: parameter %s has no fragments (only an enum with fragments fills a slot)", name, name)
		default:
			for _, v := range p.Values {
				if _, ok := p.fragments[d][v]; !ok {
					bad("slot %s: no fragment for value %q", name, v)
				}
			}
		}
	}
	for _, p := range t.Params {
		if !p.window && !used[p.Name] {
			bad("parameter %s is declared but not used", p.Name)
		}
	}
	if t.window != nil && (!used[bindWindowStart] || !used[bindWindowEnd]) {
		bad("a windowed template reads ts >= $window_start AND ts < $window_end")
	}
	return errs
}

func windowParams(w *windowSpec) []Param {
	one, maxDays := 1.0, float64(w.MaxDays)
	return []Param{
		{Name: paramDays, Type: TypeInt, Default: int64(w.Days), Min: &one, Max: &maxDays, window: true,
			Description: fmt.Sprintf("Length of the window in days, counted back from `to` (or now). Use either days or from. Default %d.", w.Days)},
		{Name: paramFrom, Type: TypeTimestamp, Optional: true, window: true,
			Description: "Start of the window (inclusive), RFC 3339 or YYYY-MM-DD, UTC. Replaces days."},
		{Name: paramTo, Type: TypeTimestamp, Optional: true, window: true,
			Description: "End of the window (exclusive), RFC 3339 or YYYY-MM-DD, UTC. Default now."},
	}
}

func bucketParam(b *bucketSpec) Param {
	frag := make(map[string]string, len(bucketValues))
	for _, v := range bucketValues {
		frag[v] = "'" + v + "'"
	}
	return Param{
		Name: paramBucket, Type: TypeEnum, Default: b.Default, Values: bucketValues,
		Description: "Time bucket of each row: hour, day, week (weeks start on Monday) or month.",
		fragments:   map[Dialect]map[string]string{DuckDB: frag, Snowflake: frag},
	}
}

// newParam checks one declared parameter and normalizes its default.
func newParam(mp metaParam) (Param, error) {
	p := Param{
		Name: mp.Name, Type: mp.Type, Description: strings.TrimSpace(mp.Description), Optional: mp.Optional,
		Min: mp.Min, Max: mp.Max, MaxLen: mp.MaxLen, Pattern: mp.Pattern, Values: mp.Values,
	}
	if !validName(p.Name) {
		return p, fmt.Errorf("name %q is not lowercase snake_case", p.Name)
	}
	if !paramTypes[p.Type] {
		return p, fmt.Errorf("type %q is not one of bool, duration, enum, float, int, string, timestamp", p.Type)
	}
	if p.Description == "" {
		return p, errors.New("has no description")
	}
	numeric := p.Type == TypeInt || p.Type == TypeFloat || p.Type == TypeDuration
	if (p.Min != nil || p.Max != nil) && !numeric {
		return p, errors.New("min and max apply to int, float and duration parameters")
	}
	if numeric && (p.Min == nil || p.Max == nil) {
		return p, errors.New("a number needs min and max: every limit is explicit")
	}
	if p.Min != nil && p.Max != nil && *p.Min > *p.Max {
		return p, fmt.Errorf("min %v is above max %v", *p.Min, *p.Max)
	}
	if p.Type != TypeString && (p.MaxLen != 0 || p.Pattern != "") {
		return p, errors.New("max_len and pattern apply to string parameters")
	}
	if p.Type == TypeString && (p.MaxLen < 0 || p.MaxLen > MaxMaxLen) {
		return p, fmt.Errorf("max_len %d must be between 1 and %d (0 means %d)", p.MaxLen, MaxMaxLen, DefaultMaxLen)
	}
	if p.Pattern != "" {
		re, err := regexp.Compile(p.Pattern)
		if err != nil {
			return p, fmt.Errorf("pattern: %w", err)
		}
		p.pattern = re
	}
	if p.Type == TypeEnum {
		if len(p.Values) == 0 {
			return p, errors.New("an enum needs values")
		}
		seen := map[string]bool{}
		for _, v := range p.Values {
			if v == "" || seen[v] {
				return p, fmt.Errorf("enum value %q is empty or repeated", v)
			}
			seen[v] = true
		}
	} else if len(p.Values) > 0 || len(mp.Fragments) > 0 {
		return p, errors.New("values and fragments apply to enum parameters")
	}
	if len(mp.Fragments) > 0 {
		p.fragments = map[Dialect]map[string]string{}
		for k, frags := range mp.Fragments {
			var ds []Dialect
			switch {
			case k == "all":
				ds = Dialects
			case knownDialect(Dialect(k)):
				ds = []Dialect{Dialect(k)}
			default:
				return p, fmt.Errorf("fragments: %q is not duckdb, snowflake or all", k)
			}
			for v, f := range frags {
				if !contains(p.Values, v) {
					return p, fmt.Errorf("fragments.%s: %q is not one of the values", k, v)
				}
				if err := checkFragment(f); err != nil {
					return p, fmt.Errorf("fragments.%s.%s %w", k, v, err)
				}
				for _, d := range ds {
					if p.fragments[d] == nil {
						p.fragments[d] = map[string]string{}
					}
					if _, dup := p.fragments[d][v]; dup {
						return p, fmt.Errorf("fragments: %s of %q given twice", d, v)
					}
					p.fragments[d][v] = f
				}
			}
		}
	}
	if mp.Default == nil && p.Optional && p.Type != TypeString {
		return p, fmt.Errorf("an optional %s needs a default: only a string may be left out (it binds as \"\", no filter)", p.Type)
	}
	if mp.Default != nil {
		if p.Optional {
			return p, errors.New("a parameter with a default is optional already; drop optional")
		}
		raw, err := json.Marshal(mp.Default)
		if err != nil {
			return p, fmt.Errorf("default: %w", err)
		}
		v, _, prob := convert(&p, raw)
		if prob != nil {
			return p, fmt.Errorf("default %s: %s", bytes.TrimSpace(raw), prob.Msg)
		}
		p.Default = v
	}
	return p, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
