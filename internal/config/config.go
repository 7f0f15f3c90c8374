// Package config resolves activitybi's settings from, in increasing order of
// precedence: built-in defaults, one YAML file, ACTIVITYBI_* environment
// variables and command-line flags. It remembers where every value came from
// so `activitybi config` can show it, and validates everything up front so bad
// configuration fails at start, naming the field.
package config

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/activitybi/activitybi/internal/redact"
	"github.com/activitybi/activitybi/internal/warehouse"
)

// EnvPrefix starts every environment variable activitybi reads.
const EnvPrefix = "ACTIVITYBI_"

// EnvConfigFile names the config file when --config is not given.
const EnvConfigFile = EnvPrefix + "CONFIG"

// EnvToken holds the bearer token of `activitybi mcp --remote` when --token
// is not given. It is not a setting: a secret stays out of `activitybi
// config` and config files.
const EnvToken = EnvPrefix + "TOKEN"

// Config is the effective configuration.
type Config struct {
	DataDir    string
	Customer   string
	Durability string
	Listen     string
	LogLevel   string
	LogFormat  string

	Spool struct {
		SegmentMaxBytes int64
		SegmentMaxAge   time.Duration
		FsyncInterval   time.Duration
		MaxPending      int
	}
	Upload struct {
		BatchMaxRecords int
		BatchMaxBytes   int64
		PollInterval    time.Duration
		RetryMin        time.Duration
		RetryMax        time.Duration
	}
	Cache struct {
		// RedisURL enables the shared second cache tier ("" = in-process only).
		RedisURL string
		// Namespace prefixes the Redis keys and channel: two installations
		// (data directories) sharing one Redis must not read each other's
		// contexts of same-named customers. "": derived from the data
		// directory's installation id (cmd/activitybi, cache.go).
		Namespace string
	}
	Artifacts struct {
		// URL of the artifact store ("" = a folder named artifacts in the
		// data directory; file:///dir, s3://bucket?region=..., mem://).
		URL string
	}
	Warehouse struct {
		Driver      string
		Path        string
		MemoryLimit string
		Threads     int
	}

	// File is the config file that was read, "" if none.
	File string
	// Sources maps each key to where its value came from: "default" (or
	// "default: <how it is computed>" for a default that depends on the
	// machine), "file <path>", "env ACTIVITYBI_X" or "flag --x".
	Sources map[string]string
}

// SpoolDir is where the spool lives.
func (c *Config) SpoolDir() string { return filepath.Join(c.DataDir, "spool") }

// field is one setting: its dotted key, default and accessors.
type field struct {
	key  string
	help string
	def  func(c *Config) string // default, may depend on earlier fields
	set  func(c *Config, v string) error
	get  func(c *Config) string
	flag bool // registered as a visible flag (others are hidden)
	// defNote says how a computed default is derived; `activitybi config`
	// shows it beside "default" (e.g. "default: NumCPU-1 (min 1)").
	defNote string
	short   string
	// redact marks a URL that may carry a password (redis://:pw@host):
	// Show masks it.
	redact bool
}

// Key returns the environment variable name of a key.
func envName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.NewReplacer(".", "_").Replace(key))
}

func flagName(key string) string {
	return strings.NewReplacer(".", "-", "_", "-").Replace(key)
}

func str(p func(c *Config) *string, allowed ...string) (func(*Config, string) error, func(*Config) string) {
	return func(c *Config, v string) error {
			if len(allowed) > 0 && !contains(allowed, v) {
				return fmt.Errorf("%q is not one of %s", v, strings.Join(allowed, ", "))
			}
			*p(c) = v
			return nil
		}, func(c *Config) string {
			return *p(c)
		}
}

func dur(p func(c *Config) *time.Duration, min, max time.Duration) (func(*Config, string) error, func(*Config) string) {
	return func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("%q is not a duration (e.g. 100ms, 60s, 5m)", v)
			}
			if d < min || d > max {
				return fmt.Errorf("%s is out of range [%s, %s]", d, min, max)
			}
			*p(c) = d
			return nil
		}, func(c *Config) string {
			return p(c).String()
		}
}

func integer(p func(c *Config) *int, min, max int) (func(*Config, string) error, func(*Config) string) {
	return func(c *Config, v string) error {
			n, err := strconv.Atoi(strings.ReplaceAll(v, "_", ""))
			if err != nil {
				return fmt.Errorf("%q is not an integer", v)
			}
			if n < min || n > max {
				return fmt.Errorf("%d is out of range [%d, %d]", n, min, max)
			}
			*p(c) = n
			return nil
		}, func(c *Config) string {
			return strconv.Itoa(*p(c))
		}
}

func size(p func(c *Config) *int64, min, max int64) (func(*Config, string) error, func(*Config) string) {
	return func(c *Config, v string) error {
			n, err := ParseSize(v)
			if err != nil {
				return err
			}
			if n < min || n > max {
				return fmt.Errorf("%s is out of range [%s, %s]", FormatSize(n), FormatSize(min), FormatSize(max))
			}
			*p(c) = n
			return nil
		}, func(c *Config) string {
			return FormatSize(*p(c))
		}
}

func constant(s string) func(*Config) string { return func(*Config) string { return s } }

// DefaultWarehouseThreads is warehouse.threads when nothing sets it: the
// DuckDB driver's own default, warehouse.ThreadsFor(runtime.NumCPU()),
// which explains the choice.
func DefaultWarehouseThreads() int { return warehouse.ThreadsFor(runtime.NumCPU()) }

var fields = func() []field {
	var fs []field
	add := func(f field) { fs = append(fs, f) }
	{
		set, get := str(func(c *Config) *string { return &c.DataDir })
		add(field{key: "data_dir", help: "directory holding the spool, the warehouse and state", def: func(*Config) string { return DefaultDataDir() }, set: func(c *Config, v string) error {
			if v == "" {
				return errors.New("must not be empty")
			}
			abs, err := filepath.Abs(expandHome(v))
			if err != nil {
				return err
			}
			return set(c, abs)
		}, get: get, flag: true})
	}
	{
		set, get := str(func(c *Config) *string { return &c.Customer })
		add(field{key: "customer", help: "identity of this machine's events (default: derived from the OS user)", def: func(*Config) string { return DefaultCustomer() }, set: func(c *Config, v string) error {
			if v == "" || len([]rune(v)) > 255 {
				return errors.New("must be 1 to 255 characters")
			}
			// C1 too (U+0080 to U+009F): a new event refuses them in its
			// customer, and this is every event's customer.
			if strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f || r >= 0x80 && r <= 0x9f }) {
				return errors.New("must not contain control characters")
			}
			return set(c, v)
		}, get: get, flag: true})
	}
	{
		set, get := str(func(c *Config) *string { return &c.Durability }, "default", "sync")
		add(field{key: "durability", help: "spool durability: default (fsync every 100ms) or sync (fsync before acknowledging)", def: constant("default"), set: set, get: get, flag: true})
	}
	{
		set, get := str(func(c *Config) *string { return &c.Listen })
		add(field{key: "listen", help: "HTTP address of the core (serve)", def: constant("127.0.0.1:7314"), set: set, get: get, flag: true})
	}
	{
		set, get := str(func(c *Config) *string { return &c.LogLevel }, "debug", "info", "warn", "error")
		add(field{key: "log_level", help: "log level: debug, info, warn, error", def: constant("info"), set: set, get: get, flag: true})
	}
	{
		set, get := str(func(c *Config) *string { return &c.Cache.RedisURL })
		add(field{key: "cache.redis_url", help: "Redis URL of the shared memory cache tier (redis://host:6379/0, rediss:// for TLS); empty = in-process cache only", def: constant(""), set: func(c *Config, v string) error {
			if v != "" && !strings.HasPrefix(v, "redis://") && !strings.HasPrefix(v, "rediss://") {
				return errors.New("must start with redis:// or rediss://")
			}
			return set(c, v)
		}, get: get, redact: true})
	}
	{
		set, get := str(func(c *Config) *string { return &c.Cache.Namespace })
		add(field{key: "cache.namespace", help: "prefix of every Redis key and channel; installations sharing one Redis must differ, processes serving one warehouse must agree (default: activitybi- and this data directory's random installation id, kept in installation.id)",
			// Its characters are checked by the cache when it opens
			// (1-64 letters, digits, '.', '_' or '-').
			def: constant(""), set: set, get: get})
	}
	{
		set, get := str(func(c *Config) *string { return &c.Artifacts.URL })
		add(field{key: "artifacts.url", help: "where cards and other artifacts are kept: file:///abs/dir, s3://bucket?region=R (credentials from the AWS environment), mem:// (lost on exit); empty = <data_dir>/artifacts", def: constant(""), set: func(c *Config, v string) error {
			if v != "" && !strings.HasPrefix(v, "file:///") && !strings.HasPrefix(v, "s3://") && !strings.HasPrefix(v, "mem://") {
				return errors.New("must start with file:///, s3:// or mem://")
			}
			return set(c, v)
		}, get: get, redact: true})
	}
	{
		set, get := str(func(c *Config) *string { return &c.LogFormat }, "text", "json")
		add(field{key: "log_format", help: "log format on stderr: text or json", def: constant("text"), set: set, get: get})
	}
	{
		set, get := size(func(c *Config) *int64 { return &c.Spool.SegmentMaxBytes }, 64<<10, 1<<30)
		add(field{key: "spool.segment_max_bytes", help: "rotate a spool segment at this size", def: constant("16MiB"), set: set, get: get})
	}
	{
		set, get := dur(func(c *Config) *time.Duration { return &c.Spool.SegmentMaxAge }, time.Second, time.Hour)
		add(field{key: "spool.segment_max_age", help: "rotate a spool segment at this age", def: constant("60s"), set: set, get: get})
	}
	{
		set, get := dur(func(c *Config) *time.Duration { return &c.Spool.FsyncInterval }, time.Millisecond, 10*time.Second)
		add(field{key: "spool.fsync_interval", help: "background fsync interval in default durability", def: constant("100ms"), set: set, get: get})
	}
	{
		set, get := integer(func(c *Config) *int { return &c.Spool.MaxPending }, 100, 100_000_000)
		add(field{key: "spool.max_pending", help: "backpressure: events not yet in the warehouse before writes fail", def: constant("100000"), set: set, get: get})
	}
	{
		set, get := integer(func(c *Config) *int { return &c.Upload.BatchMaxRecords }, 1, 1_000_000)
		add(field{key: "upload.batch_max_records", help: "most records in one warehouse transaction", def: constant("20000"), set: set, get: get})
	}
	{
		set, get := size(func(c *Config) *int64 { return &c.Upload.BatchMaxBytes }, 64<<10, 1<<30)
		add(field{key: "upload.batch_max_bytes", help: "most spool bytes in one warehouse transaction", def: constant("8MiB"), set: set, get: get})
	}
	{
		set, get := dur(func(c *Config) *time.Duration { return &c.Upload.PollInterval }, time.Millisecond, time.Minute)
		add(field{key: "upload.poll_interval", help: "how often the uploader looks for new records", def: constant("50ms"), set: set, get: get})
	}
	{
		set, get := dur(func(c *Config) *time.Duration { return &c.Upload.RetryMin }, time.Millisecond, time.Minute)
		add(field{key: "upload.retry_min", help: "first backoff after a warehouse error", def: constant("100ms"), set: set, get: get})
	}
	{
		set, get := dur(func(c *Config) *time.Duration { return &c.Upload.RetryMax }, time.Millisecond, time.Hour)
		add(field{key: "upload.retry_max", help: "backoff cap after repeated warehouse errors", def: constant("30s"), set: set, get: get})
	}
	{
		set, get := str(func(c *Config) *string { return &c.Warehouse.Driver }, "duckdb")
		add(field{key: "warehouse.driver", help: "warehouse driver (duckdb; snowflake in a later release)", def: constant("duckdb"), set: set, get: get})
	}
	{
		set, get := str(func(c *Config) *string { return &c.Warehouse.Path })
		add(field{key: "warehouse.path", help: "DuckDB file", def: func(c *Config) string { return filepath.Join(c.DataDir, "warehouse.duckdb") }, set: func(c *Config, v string) error {
			if v == "" {
				return errors.New("must not be empty")
			}
			abs, err := filepath.Abs(expandHome(v))
			if err != nil {
				return err
			}
			return set(c, abs)
		}, get: get})
	}
	{
		set, get := str(func(c *Config) *string { return &c.Warehouse.MemoryLimit })
		add(field{key: "warehouse.memory_limit", help: "DuckDB memory_limit", def: constant("512MB"), set: func(c *Config, v string) error {
			if _, err := ParseSize(v); err != nil {
				return err
			}
			if _, err := strconv.ParseUint(v, 10, 64); err == nil {
				// DuckDB refuses a number without a unit, which ParseSize
				// takes as bytes: say so, rather than fail at open.
				v += "B"
			}
			return set(c, v)
		}, get: get})
	}
	{
		set, get := integer(func(c *Config) *int { return &c.Warehouse.Threads }, 1, 256)
		add(field{key: "warehouse.threads", help: "DuckDB threads, the calling thread included (default NumCPU-1, min 1: DuckDB's caller takes part in every query, and the core's intake, uploader and edges need the last CPU)",
			def: func(*Config) string { return strconv.Itoa(DefaultWarehouseThreads()) }, defNote: "NumCPU-1 (min 1)", set: set, get: get})
	}
	return fs
}()

// Keys lists every configuration key in order.
func Keys() []string {
	ks := make([]string, len(fields))
	for i, f := range fields {
		ks[i] = f.key
	}
	return ks
}

// Get returns the effective value of key as a string.
func (c *Config) Get(key string) string {
	for _, f := range fields {
		if f.key == key {
			return f.get(c)
		}
	}
	return ""
}

// Show returns the value of key for people to read (`activitybi config`):
// Get's, with the password of a URL masked, since such output is copied
// into terminals, tickets and chats.
func (c *Config) Show(key string) string {
	for _, f := range fields {
		if f.key == key {
			v := f.get(c)
			if f.redact && v != "" {
				return redact.URL(v)
			}
			return v
		}
	}
	return ""
}

// Flags holds the command-line flags bound to configuration keys.
type Flags struct {
	fs   *pflag.FlagSet
	vals map[string]*string
	file *string
}

// BindFlags registers --config and one flag per key on fs. The common keys
// are visible; the rest are hidden but work (see `activitybi config`).
func BindFlags(fs *pflag.FlagSet) *Flags {
	fl := &Flags{fs: fs, vals: map[string]*string{}}
	fl.file = fs.String("config", "", "config file (YAML; default $"+EnvConfigFile+" or "+DefaultConfigFile()+" when it exists)")
	for _, f := range fields {
		name := flagName(f.key)
		fl.vals[f.key] = fs.String(name, "", f.help)
		if !f.flag {
			_ = fs.MarkHidden(name)
		}
	}
	return fl
}

// Load resolves the configuration: defaults, then the file, then the
// environment, then flags that were set. env is the environment as
// os.Environ() gives it (nil means os.Environ()).
func Load(fl *Flags, env []string) (*Config, error) {
	if env == nil {
		env = os.Environ()
	}
	envMap := map[string]string{}
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, EnvPrefix) {
			envMap[k] = v
		}
	}
	// Reject misspelt ACTIVITYBI_ variables rather than ignoring them.
	known := map[string]bool{EnvConfigFile: true, EnvToken: true}
	for _, f := range fields {
		known[envName(f.key)] = true
	}
	var unknown []string
	for k := range envMap {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		names := make([]string, 0, len(known))
		for k := range known {
			names = append(names, k)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("config: unknown environment variable %s (known: %s)", strings.Join(unknown, ", "), strings.Join(names, ", "))
	}

	file, explicit := "", false
	if fl != nil && *fl.file != "" {
		file, explicit = *fl.file, true
	} else if v := envMap[EnvConfigFile]; v != "" {
		file, explicit = v, true
	} else if p := DefaultConfigFile(); p != "" {
		if _, err := os.Stat(p); err == nil {
			file = p
		}
	}
	fileVals := map[string]string{}
	if file != "" {
		var err error
		fileVals, err = readFile(file)
		if err != nil {
			if !explicit || !errors.Is(err, os.ErrNotExist) {
				return nil, err
			}
			return nil, fmt.Errorf("config: file %s does not exist", file)
		}
	}

	c := &Config{File: file, Sources: map[string]string{}}
	for _, f := range fields {
		val, src := f.def(c), "default"
		if f.defNote != "" {
			src += ": " + f.defNote
		}
		if v, ok := fileVals[f.key]; ok {
			val, src = v, "file "+file
		}
		if v, ok := envMap[envName(f.key)]; ok {
			val, src = v, "env "+envName(f.key)
		}
		if fl != nil {
			if fg := fl.fs.Lookup(flagName(f.key)); fg != nil && fg.Changed {
				val, src = *fl.vals[f.key], "flag --"+flagName(f.key)
			}
		}
		if err := f.set(c, strings.TrimSpace(val)); err != nil {
			return nil, fmt.Errorf("config: %s (from %s): %v", f.key, src, err)
		}
		c.Sources[f.key] = src
	}
	if c.Upload.RetryMax < c.Upload.RetryMin {
		return nil, fmt.Errorf("config: upload.retry_max (%s) is below upload.retry_min (%s)", c.Upload.RetryMax, c.Upload.RetryMin)
	}
	return c, nil
}

// readFile reads a YAML file into dotted keys, rejecting unknown keys.
//
// Values are taken as written: a scalar's text, not what YAML would make of
// it, so that "customer: 00123" is the customer 00123 (YAML reads an
// unquoted 00123 as the octal number 83, 0x1F as 31 and 1e3 as 1000) and a
// file means what the same text in ACTIVITYBI_* or a flag means.
func readFile(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: read %s: %w", path, err)
	}
	// Decoding into values first also refuses what would make the walk
	// below loop or blow up: an alias inside its own anchor, alias bombs.
	var raw any
	if err := yaml.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("config: %s is not valid YAML: %v", path, err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, fmt.Errorf("config: %s is not valid YAML: %v", path, err)
	}
	out := map[string]string{}
	if root.Kind == 0 || len(root.Content) == 0 {
		return out, nil // empty, or only comments
	}
	top := resolveAlias(root.Content[0])
	if top.Kind == yaml.ScalarNode && top.Tag == "!!null" {
		return out, nil
	}
	if top.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("config: %s: want a mapping of keys to values at the top (see `activitybi config` for the keys)", path)
	}
	var walk func(prefix string, m *yaml.Node) error
	walk = func(prefix string, m *yaml.Node) error {
		// Merge keys (<<: *defaults) first, so that the mapping's own keys
		// win, as YAML has it.
		for i := 0; i+1 < len(m.Content); i += 2 {
			if k := m.Content[i]; k.Tag != "!!merge" {
				continue
			}
			v := resolveAlias(m.Content[i+1])
			subs := []*yaml.Node{v}
			if v.Kind == yaml.SequenceNode {
				subs = v.Content
			}
			for _, sub := range subs {
				if sub = resolveAlias(sub); sub.Kind != yaml.MappingNode {
					return fmt.Errorf("config: %s: a merge (<<) under %q must name a mapping", path, strings.TrimSuffix(prefix, "."))
				}
				if err := walk(prefix, sub); err != nil {
					return err
				}
			}
		}
		for i := 0; i+1 < len(m.Content); i += 2 {
			k, v := m.Content[i], resolveAlias(m.Content[i+1])
			if k.Tag == "!!merge" {
				continue
			}
			key := prefix + k.Value
			if v.Kind == yaml.MappingNode {
				if err := walk(key+".", v); err != nil {
					return err
				}
				continue
			}
			if !contains(Keys(), key) {
				return fmt.Errorf("config: %s: unknown key %q (known keys: %s)", path, key, strings.Join(Keys(), ", "))
			}
			if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
				return fmt.Errorf("config: %s: %s must be a single value", path, key)
			}
			out[key] = v.Value
		}
		return nil
	}
	if err := walk("", top); err != nil {
		return nil, err
	}
	return out, nil
}

// resolveAlias follows a YAML alias (*name) to the node it names.
func resolveAlias(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// DefaultConfigFile is $XDG_CONFIG_HOME/activitybi/config.yaml (or the OS
// equivalent); it is read only when it exists.
func DefaultConfigFile() string {
	d, err := os.UserConfigDir()
	if err != nil {
		return ""
	}
	return filepath.Join(d, "activitybi", "config.yaml")
}

// DefaultDataDir is the OS data home plus "activitybi":
// $XDG_DATA_HOME (or ~/.local/share) on Linux and BSDs,
// ~/Library/Application Support on macOS, %AppData% on Windows.
func DefaultDataDir() string {
	return filepath.Join(dataHome(runtime.GOOS, os.Getenv), "activitybi")
}

func dataHome(goos string, getenv func(string) string) string {
	home := getenv("HOME")
	if home == "" {
		home, _ = os.UserHomeDir()
	}
	switch goos {
	case "windows":
		if d := getenv("AppData"); d != "" {
			return d
		}
		return filepath.Join(home, "AppData", "Roaming")
	case "darwin", "ios":
		return filepath.Join(home, "Library", "Application Support")
	default:
		if d := getenv("XDG_DATA_HOME"); d != "" && filepath.IsAbs(d) {
			return d
		}
		return filepath.Join(home, ".local", "share")
	}
}

// DefaultCustomer derives an identity from the OS user name: lower case,
// without a Windows domain.
func DefaultCustomer() string {
	name := ""
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	if name == "" {
		name = os.Getenv("USER")
	}
	if i := strings.LastIndexAny(name, `\/`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.ToLower(strings.TrimSpace(name))
	if name == "" {
		name = "local"
	}
	return name
}

func expandHome(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if h, err := os.UserHomeDir(); err == nil {
			return filepath.Join(h, p[1:])
		}
	}
	return p
}

// ParseSize parses sizes such as 16MiB, 512MB, 64KiB or a plain byte count.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(strings.ToUpper(t), strings.ToUpper(u.suffix)) {
			t, mult = strings.TrimSpace(t[:len(t)-len(u.suffix)]), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size (e.g. 16MiB, 512MB, 65536)", s)
	}
	return n * mult, nil
}

// FormatSize prints n in the largest binary unit that divides it.
func FormatSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return strconv.FormatInt(n, 10)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
