package config

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func setup(t *testing.T, args ...string) *Flags {
	t.Helper()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	fl := BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return fl
}

func env(kv ...string) []string { return append([]string{"HOME=/home/x", "PATH=/bin"}, kv...) }

func TestDefaults(t *testing.T) {
	t.Parallel()
	c, err := Load(setup(t, "--config", writeFile(t, "")), env())
	if err != nil {
		t.Fatal(err)
	}
	if c.Durability != "default" || c.Listen != "127.0.0.1:7314" || c.Spool.MaxPending != 100000 ||
		c.Spool.SegmentMaxBytes != 16<<20 || c.Spool.SegmentMaxAge != time.Minute || c.Spool.FsyncInterval != 100*time.Millisecond {
		t.Fatalf("defaults: %+v", c)
	}
	if c.Warehouse.Path != filepath.Join(c.DataDir, "warehouse.duckdb") {
		t.Fatalf("warehouse path %q does not follow data dir %q", c.Warehouse.Path, c.DataDir)
	}
	if c.Sources["durability"] != "default" {
		t.Fatalf("source %q", c.Sources["durability"])
	}
}

// The warehouse's thread count defaults to one less than the CPUs (at
// least 1), says so in its source, and an explicit value wins.
func TestWarehouseThreadsDefault(t *testing.T) {
	t.Parallel()
	c, err := Load(setup(t, "--config", writeFile(t, "")), env())
	if err != nil {
		t.Fatal(err)
	}
	want := max(1, runtime.NumCPU()-1)
	if c.Warehouse.Threads != want || c.Get("warehouse.threads") != strconv.Itoa(want) {
		t.Fatalf("warehouse.threads = %d (%q), want %d on %d CPUs", c.Warehouse.Threads, c.Get("warehouse.threads"), want, runtime.NumCPU())
	}
	if src := c.Sources["warehouse.threads"]; src != "default: NumCPU-1 (min 1)" {
		t.Fatalf("warehouse.threads source %q", src)
	}
	c, err = Load(setup(t, "--config", writeFile(t, "warehouse:\n  threads: 3\n")), env())
	if err != nil {
		t.Fatal(err)
	}
	if c.Warehouse.Threads != 3 || !strings.HasPrefix(c.Sources["warehouse.threads"], "file ") {
		t.Fatalf("warehouse.threads from a file: %d from %q", c.Warehouse.Threads, c.Sources["warehouse.threads"])
	}
	c, err = Load(setup(t, "--config", writeFile(t, "")), env("ACTIVITYBI_WAREHOUSE_THREADS=1"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Warehouse.Threads != 1 || c.Sources["warehouse.threads"] != "env ACTIVITYBI_WAREHOUSE_THREADS" {
		t.Fatalf("warehouse.threads from the environment: %d from %q", c.Warehouse.Threads, c.Sources["warehouse.threads"])
	}
	if _, err := Load(setup(t, "--config", writeFile(t, "")), env("ACTIVITYBI_WAREHOUSE_THREADS=0")); err == nil ||
		!strings.Contains(err.Error(), "warehouse.threads") || !strings.Contains(err.Error(), "out of range [1, 256]") {
		t.Fatalf("warehouse.threads 0: %v", err)
	}
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPrecedenceFileEnvFlag(t *testing.T) {
	t.Parallel()
	file := writeFile(t, "durability: sync\nlisten: 127.0.0.1:1\ncustomer: file-cust\nspool:\n  max_pending: 500\n  segment_max_age: 10s\n")
	c, err := Load(setup(t, "--config", file, "--listen", "127.0.0.1:3"),
		env("ACTIVITYBI_LISTEN=127.0.0.1:2", "ACTIVITYBI_CUSTOMER=env-cust"))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct{ key, val, src string }{
		{"durability", "sync", "file " + file},
		{"customer", "env-cust", "env ACTIVITYBI_CUSTOMER"},
		{"listen", "127.0.0.1:3", "flag --listen"},
		{"spool.max_pending", "500", "file " + file},
		{"spool.segment_max_age", "10s", "file " + file},
		{"log_level", "info", "default"},
	}
	for _, ch := range checks {
		if got := c.Get(ch.key); got != ch.val {
			t.Errorf("%s = %q, want %q", ch.key, got, ch.val)
		}
		if c.Sources[ch.key] != ch.src {
			t.Errorf("%s source %q, want %q", ch.key, c.Sources[ch.key], ch.src)
		}
	}
}

func TestDataDirOverride(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c, err := Load(setup(t, "--data-dir", dir, "--config", writeFile(t, "")), env())
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != dir || c.SpoolDir() != filepath.Join(dir, "spool") || c.Warehouse.Path != filepath.Join(dir, "warehouse.duckdb") {
		t.Fatalf("%+v", c)
	}
}

func TestBadConfigNamesTheField(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		file string
		env  []string
		args []string
		want string
	}{
		"bad durability flag": {args: []string{"--durability", "fast"}, want: `durability (from flag --durability): "fast" is not one of default, sync`},
		"bad duration env":    {env: []string{"ACTIVITYBI_SPOOL_FSYNC_INTERVAL=soon"}, want: "spool.fsync_interval (from env ACTIVITYBI_SPOOL_FSYNC_INTERVAL)"},
		"unknown env":         {env: []string{"ACTIVITYBI_DURABLITY=sync"}, want: "unknown environment variable ACTIVITYBI_DURABLITY"},
		"unknown file key":    {file: "durablity: sync\n", want: `unknown key "durablity"`},
		"unknown nested key":  {file: "spool:\n  max_pendng: 3\n", want: `unknown key "spool.max_pendng"`},
		"bad yaml":            {file: "durability: [\n", want: "is not valid YAML"},
		"out of range":        {file: "spool:\n  max_pending: 5\n", want: "spool.max_pending (from file"},
		"bad size":            {file: "spool:\n  segment_max_bytes: huge\n", want: `"huge" is not a size`},
		"retry order":         {file: "upload:\n  retry_min: 10s\n  retry_max: 1s\n", want: "upload.retry_max (1s) is below upload.retry_min (10s)"},
		"bad log level":       {args: []string{"--log-level", "loud"}, want: "log_level"},
		"C0 in customer":      {args: []string{"--customer", "a\x1bb"}, want: "customer (from flag --customer): must not contain control characters"},
		"C1 in customer":      {env: []string{"ACTIVITYBI_CUSTOMER=a\u009bb"}, want: "customer (from env ACTIVITYBI_CUSTOMER): must not contain control characters"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"--config", writeFile(t, tc.file)}, tc.args...)
			_, err := Load(setup(t, args...), env(tc.env...))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestMissingExplicitFile(t *testing.T) {
	t.Parallel()
	_, err := Load(setup(t, "--config", "/nonexistent/x.yaml"), env())
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/x.yaml") {
		t.Fatalf("got %v", err)
	}
}

func TestDataHome(t *testing.T) {
	t.Parallel()
	get := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	cases := []struct {
		goos string
		env  map[string]string
		want string
	}{
		{"linux", map[string]string{"HOME": "/h", "XDG_DATA_HOME": "/xdg"}, "/xdg"},
		{"linux", map[string]string{"HOME": "/h"}, "/h/.local/share"},
		{"linux", map[string]string{"HOME": "/h", "XDG_DATA_HOME": "relative"}, "/h/.local/share"},
		{"darwin", map[string]string{"HOME": "/Users/a"}, "/Users/a/Library/Application Support"},
		{"windows", map[string]string{"HOME": "/h", "AppData": `C:\Users\a\AppData\Roaming`}, `C:\Users\a\AppData\Roaming`},
	}
	for _, tc := range cases {
		if got := dataHome(tc.goos, get(tc.env)); got != tc.want {
			t.Errorf("%s %v: %q, want %q", tc.goos, tc.env, got, tc.want)
		}
	}
}

func TestSizes(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int64{"16MiB": 16 << 20, "512MB": 512e6, "64KiB": 64 << 10, "100": 100, "1GiB": 1 << 30, "2 mib": 2 << 20} {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "-1", "1.5MiB", "lots"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) accepted", bad)
		}
	}
}

// A file's values are taken as written, as the same text in the
// environment or a flag would be: YAML reads an unquoted 00123 as the octal
// number 83, 0x1F as 31 and 1e5 as 100000, and a customer id of digits
// must not become another customer's.
func TestFileValuesAreTakenAsWritten(t *testing.T) {
	t.Parallel()
	for written, want := range map[string]string{"00123": "00123", "0x1F": "0x1F", "1e3": "1e3", "'0042'": "0042", "1.50": "1.50", "true": "true"} {
		c, err := Load(setup(t, "--config", writeFile(t, "customer: "+written+"\n")), env())
		if err != nil {
			t.Fatalf("customer: %s: %v", written, err)
		}
		if c.Customer != want {
			t.Errorf("customer: %s gave customer %q, want %q", written, c.Customer, want)
		}
	}
	// The same text is refused where the environment refuses it.
	if _, err := Load(setup(t, "--config", writeFile(t, "spool:\n  max_pending: 1e5\n")), env()); err == nil ||
		!strings.Contains(err.Error(), `spool.max_pending (from file`) || !strings.Contains(err.Error(), `"1e5" is not an integer`) {
		t.Fatalf("max_pending: 1e5: %v", err)
	}
	// Anchors and aliases still work; empty values and lists are refused.
	c, err := Load(setup(t, "--config", writeFile(t, "customer: &c 007\nlisten: 127.0.0.1:9\nspool:\n  max_pending: 1_000\n")), env())
	if err != nil || c.Customer != "007" || c.Spool.MaxPending != 1000 {
		t.Fatalf("%+v, %v", c, err)
	}
	for _, bad := range []string{"customer:\n", "customer: [a]\n", "- customer\n"} {
		if _, err := Load(setup(t, "--config", writeFile(t, bad)), env()); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	for _, empty := range []string{"", "# nothing yet\n", "---\n"} {
		if _, err := Load(setup(t, "--config", writeFile(t, empty)), env()); err != nil {
			t.Errorf("%q: %v", empty, err)
		}
	}
}

// `activitybi config` shows URLs without their password; Get keeps it (a
// core started by an edge is given the value).
func TestShowMasksPasswords(t *testing.T) {
	t.Parallel()
	c, err := Load(setup(t, "--config", writeFile(t, "")), env("ACTIVITYBI_CACHE_REDIS_URL=redis://app:s3cret@cache:6379/0"))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Show("cache.redis_url"); strings.Contains(got, "s3cret") || !strings.Contains(got, "app:") || !strings.Contains(got, "cache:6379/0") {
		t.Errorf("Show = %q", got)
	}
	if got := c.Get("cache.redis_url"); got != "redis://app:s3cret@cache:6379/0" {
		t.Errorf("Get = %q", got)
	}
	if got := c.Show("listen"); got != "127.0.0.1:7314" {
		t.Errorf("Show(listen) = %q", got)
	}
}

// warehouse.memory_limit in bytes without a unit (the help's 65536) is
// given to DuckDB with one: DuckDB refuses a bare number at open.
func TestMemoryLimitBareNumber(t *testing.T) {
	t.Parallel()
	c, err := Load(setup(t, "--config", writeFile(t, "warehouse:\n  memory_limit: 1073741824\n")), env())
	if err != nil {
		t.Fatal(err)
	}
	if c.Warehouse.MemoryLimit != "1073741824B" {
		t.Fatalf("memory_limit %q", c.Warehouse.MemoryLimit)
	}
}

// Merge keys work as they did when the file was decoded into a map: the
// mapping's own keys win over merged ones.
func TestFileMergeKeys(t *testing.T) {
	t.Parallel()
	file := writeFile(t, "base: &b\n  max_pending: 700\n  segment_max_age: 5s\nspool:\n  segment_max_age: 7s\n  <<: *b\n")
	if _, err := Load(setup(t, "--config", file), env()); err == nil || !strings.Contains(err.Error(), `unknown key "base.max_pending"`) {
		t.Fatalf("an unknown anchored key: %v", err)
	}
	file = writeFile(t, "upload: {poll_interval: 10ms}\nspool:\n  segment_max_age: 7s\n  <<: {max_pending: 700, segment_max_age: 5s}\n")
	c, err := Load(setup(t, "--config", file), env())
	if err != nil {
		t.Fatal(err)
	}
	if c.Spool.MaxPending != 700 || c.Spool.SegmentMaxAge != 7*time.Second || c.Upload.PollInterval != 10*time.Millisecond {
		t.Fatalf("max_pending %d, segment_max_age %s, poll_interval %s", c.Spool.MaxPending, c.Spool.SegmentMaxAge, c.Upload.PollInterval)
	}
	// An alias inside its own anchor is refused, not followed for ever.
	for _, body := range []string{"spool: &a {<<: *a}\n", "spool: &a\n  x: *a\n"} {
		if _, err := Load(setup(t, "--config", writeFile(t, body)), env()); err == nil || !strings.Contains(err.Error(), "is not valid YAML") {
			t.Errorf("%q: %v", body, err)
		}
	}
}

// cache.namespace is empty by default (the cache derives it from the data
// directory's installation id) and taken as given when set.
func TestCacheNamespace(t *testing.T) {
	t.Parallel()
	load := func(extra ...string) *Config {
		t.Helper()
		c, err := Load(setup(t, append([]string{"--config", writeFile(t, "")}, extra...)...), env())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if c := load("--data-dir", "/srv/a"); c.Cache.Namespace != "" {
		t.Errorf("default %q", c.Cache.Namespace)
	}
	if c := load("--data-dir", "/srv/a", "--cache-namespace", "team"); c.Cache.Namespace != "team" || c.Sources["cache.namespace"] != "flag --cache-namespace" {
		t.Errorf("override: %q from %q", c.Cache.Namespace, c.Sources["cache.namespace"])
	}
}
