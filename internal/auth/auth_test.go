package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var tokenRE = regexp.MustCompile(`^abi_[a-z2-7]{10}_[A-Za-z0-9_-]{43}$`)

// setup opens a Store on a fresh data dir (which does not exist yet, as on a
// first run).
func setup(t *testing.T) (*Store, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s, dir
}

func mustCreate(t *testing.T, s *Store, customer string, expires time.Time) (string, Token) {
	t.Helper()
	tok, info, err := s.Create(customer, expires, "")
	if err != nil {
		t.Fatal(err)
	}
	return tok, info
}

func TestCreateVerify(t *testing.T) {
	t.Parallel()
	s, dir := setup(t)
	before := time.Now().UTC().Truncate(time.Second)
	tok, info, err := s.Create("acme corp ü", time.Time{}, "laptop")
	if err != nil {
		t.Fatal(err)
	}
	if !tokenRE.MatchString(tok) {
		t.Fatalf("token %q does not match %s", tok, tokenRE)
	}
	if !strings.HasPrefix(tok, Prefix+info.ID+"_") {
		t.Fatalf("token %q does not carry id %s", tok, info.ID)
	}
	if info.Customer != "acme corp ü" || info.Note != "laptop" || !info.ExpiresAt.IsZero() || !info.RevokedAt.IsZero() ||
		info.CreatedAt.Before(before) || info.CreatedAt.After(time.Now()) {
		t.Fatalf("info %+v", info)
	}
	for name, s := range map[string]*Store{"same store": s, "fresh store": mustOpen(t, dir)} {
		got, err := s.Verify(tok, time.Now())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got != info {
			t.Fatalf("%s: Verify = %+v, want %+v", name, got, info)
		}
	}
	// Only the hash is stored.
	b, err := os.ReadFile(filepath.Join(dir, TokensFile))
	if err != nil {
		t.Fatal(err)
	}
	secret := tok[len(Prefix)+idLen+1:]
	if strings.Contains(string(b), secret) || !strings.Contains(string(b), `"hash": "sha256:`) {
		t.Fatalf("file:\n%s", b)
	}
	// Two tokens for one customer are distinct and both valid.
	tok2, info2 := mustCreate(t, s, "acme corp ü", time.Time{})
	if tok2 == tok || info2.ID == info.ID {
		t.Fatal("second token repeats the first")
	}
	if _, err := s.Verify(tok2, time.Now()); err != nil {
		t.Fatal(err)
	}
}

func mustOpen(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVerifyRefuses(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	now := time.Now()
	good, _ := mustCreate(t, s, "acme", time.Time{})
	expiring, _ := mustCreate(t, s, "acme", now.Add(time.Hour))
	revoked, rinfo := mustCreate(t, s, "acme", time.Time{})
	if err := s.Revoke(rinfo.ID); err != nil {
		t.Fatal(err)
	}
	other, _ := mustCreate(t, s, "other", time.Time{})
	id := good[len(Prefix) : len(Prefix)+idLen]
	secret := good[len(Prefix)+idLen+1:]
	// 43 characters carry 258 bits for 256: the last character's two low
	// bits must be zero. Setting one is another spelling of the same secret.
	last := strings.IndexByte(secretAlphabet, secret[len(secret)-1])
	nonCanonical := good[:len(good)-1] + string(secretAlphabet[last|1])

	for name, tc := range map[string]struct {
		token string
		now   time.Time
		want  error
	}{
		"valid":                 {good, now, nil},
		"not yet expired":       {expiring, now.Add(59 * time.Minute), nil},
		"expired":               {expiring, now.Add(time.Hour), ErrExpired},
		"revoked":               {revoked, now, ErrRevoked},
		"revoked and expired":   {revoked, now.Add(1000 * time.Hour), ErrRevoked},
		"empty":                 {"", now, ErrMalformed},
		"wrong prefix":          {"abx_" + good[4:], now, ErrMalformed},
		"upper case prefix":     {"ABI_" + good[4:], now, ErrMalformed},
		"bearer included":       {"Bearer " + good, now, ErrMalformed},
		"trailing newline":      {good + "\n", now, ErrMalformed},
		"truncated":             {good[:len(good)-1], now, ErrMalformed},
		"upper case id":         {Prefix + strings.ToUpper(id) + "_" + secret, now, ErrMalformed},
		"id with 0":             {Prefix + "0" + id[1:] + "_" + secret, now, ErrMalformed},
		"missing separator":     {Prefix + id + "x" + secret, now, ErrMalformed},
		"bad base64":            {good[:len(good)-5] + "!" + good[len(good)-4:], now, ErrMalformed},
		"standard base64":       {good[:len(good)-5] + "+" + good[len(good)-4:], now, ErrMalformed},
		"non-canonical base64":  {nonCanonical, now, ErrMalformed},
		"unknown id":            {Prefix + "aaaaaaaaaa_" + secret, now, ErrUnknown},
		"wrong secret for id":   {Prefix + id + "_" + other[len(Prefix)+idLen+1:], now, ErrUnknown},
		"revoked, wrong secret": {Prefix + rinfo.ID + "_" + secret, now, ErrUnknown},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			info, err := s.Verify(tc.token, tc.now)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
			for _, e := range []error{ErrMalformed, ErrUnknown, ErrRevoked, ErrExpired} {
				if e != tc.want && errors.Is(err, e) {
					t.Fatalf("%v is also %v", err, e)
				}
			}
			if err != nil && strings.Contains(err.Error(), secret) {
				t.Fatalf("error reveals the secret: %v", err)
			}
			switch {
			case tc.want == nil || tc.want == ErrRevoked || tc.want == ErrExpired:
				if info.ID == "" || info.Customer != "acme" {
					t.Fatalf("info %+v", info)
				}
			default:
				if info != (Token{}) {
					t.Fatalf("refused token gave away %+v", info)
				}
			}
		})
	}
}

const secretAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

func TestState(t *testing.T) {
	t.Parallel()
	now := time.Date(2027, 1, 31, 12, 0, 0, 0, time.UTC)
	for name, tc := range map[string]struct {
		tok  Token
		want string
	}{
		"no expiry":           {Token{}, StateActive},
		"expires later":       {Token{ExpiresAt: now.Add(time.Nanosecond)}, StateActive},
		"expires now":         {Token{ExpiresAt: now}, StateExpired},
		"revoked":             {Token{RevokedAt: now.Add(-time.Hour)}, StateRevoked},
		"revoked and expired": {Token{RevokedAt: now, ExpiresAt: now.Add(-time.Hour)}, StateRevoked},
	} {
		if got := tc.tok.State(now); got != tc.want {
			t.Errorf("%s: State = %s, want %s", name, got, tc.want)
		}
	}
}

func TestCreateChecks(t *testing.T) {
	t.Parallel()
	s, dir := setup(t)
	for name, tc := range map[string]struct {
		customer, note string
		expires        time.Time
		want           string
	}{
		"no customer":            {"", "", time.Time{}, "customer: is required"},
		"long customer":          {strings.Repeat("a", 256), "", time.Time{}, "customer: is 256 characters; the limit is 255"},
		"newline in customer":    {"a\nb", "", time.Time{}, "customer: contains control characters"},
		"DEL in customer":        {"a\x7fb", "", time.Time{}, "customer: contains control characters"},
		"invalid UTF-8 customer": {"a\xffb", "", time.Time{}, "customer: is not valid UTF-8"},
		"tab in note":            {"acme", "a\tb", time.Time{}, "note: contains control characters"},
		"C1 CSI in customer":     {"a\u009b31mb", "", time.Time{}, "customer: contains control characters"},
		"C1 NEL in note":         {"acme", "a\u0085b", time.Time{}, "note: contains control characters"},
		"long note":              {"acme", strings.Repeat("é", 256), time.Time{}, "note: is 256 characters; the limit is 255"},
		"past expiry":            {"acme", "", time.Now().Add(-time.Second), "is in the past"},
	} {
		if _, _, err := s.Create(tc.customer, tc.expires, tc.note); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Create = %v, want an error containing %q", name, err, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, TokensFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("refused creates wrote the file: %v", err)
	}
	// The limits are in characters, not bytes.
	if _, _, err := s.Create(strings.Repeat("é", 255), time.Time{}, strings.Repeat("ü", 255)); err != nil {
		t.Fatal(err)
	}
}

func TestRevoke(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	tok, info := mustCreate(t, s, "acme", time.Time{})
	keep, _ := mustCreate(t, s, "acme", time.Time{})
	if err := s.Revoke(info.ID); err != nil {
		t.Fatal(err)
	}
	list, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	first := list[0].RevokedAt
	if first.IsZero() || list[0].State(time.Now()) != StateRevoked || list[1].State(time.Now()) != StateActive {
		t.Fatalf("list after revoke: %+v", list)
	}
	// Twice is fine and keeps the first time.
	if err := s.Revoke(info.ID); err != nil {
		t.Fatalf("second revoke: %v", err)
	}
	if list, _ := s.List(); !list[0].RevokedAt.Equal(first) {
		t.Fatalf("second revoke moved revoked_at from %s to %s", first, list[0].RevokedAt)
	}
	if _, err := s.Verify(tok, time.Now()); !errors.Is(err, ErrRevoked) {
		t.Fatalf("Verify revoked = %v", err)
	}
	if _, err := s.Verify(keep, time.Now()); err != nil {
		t.Fatalf("other token: %v", err)
	}
	err = s.Revoke("zzzzzzzzzz")
	if !errors.Is(err, ErrUnknown) || !strings.Contains(err.Error(), `"zzzzzzzzzz"`) {
		t.Fatalf("unknown id: %v", err)
	}
}

func TestListHasNoSecrets(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	if list, err := s.List(); err != nil || len(list) != 0 {
		t.Fatalf("empty store: %v %v", list, err)
	}
	tok, _ := mustCreate(t, s, "acme", time.Now().Add(time.Hour))
	list, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(list)
	if strings.Contains(string(b), "sha256") || strings.Contains(string(b), tok[len(Prefix)+idLen+1:]) || !strings.Contains(string(b), "expires_at") {
		t.Fatalf("list JSON: %s", b)
	}
	if strings.Contains(string(b), "revoked_at") {
		t.Fatalf("zero revoked_at is written: %s", b)
	}
}

// A revoke (or create) by another Store, as by the CLI next to a running
// core, reaches a Store that only calls Verify within a second.
func TestReloadSeesOtherWriter(t *testing.T) {
	t.Parallel()
	core, dir := setup(t)
	cli := mustOpen(t, dir)
	tok, info := mustCreate(t, cli, "acme", time.Time{})
	waitVerify(t, core, tok, nil)
	if err := cli.Revoke(info.ID); err != nil {
		t.Fatal(err)
	}
	waitVerify(t, core, tok, ErrRevoked)
	tok2, _ := mustCreate(t, cli, "acme", time.Time{})
	waitVerify(t, core, tok2, nil)
}

// A token created by another Store, as by `activitybi token create` in a
// script next to a running core, is accepted by the core at its first use,
// without waiting for the next reload. Only an unknown id looks again: a
// revocation of a known token, or a wrong secret for one, waits for the
// reload cadence. The core's clock stands still, so no reload is due.
func TestVerifySeesNewTokenAtOnce(t *testing.T) {
	t.Parallel()
	core, dir := setup(t)
	advance := freeze(core)
	checks := countChecks(core)
	cli := mustOpen(t, dir)
	tok, info := mustCreate(t, cli, "acme", time.Time{})
	if got, err := core.Verify(tok, time.Now()); err != nil || got != info {
		t.Fatalf("Verify just after create = %+v, %v; want %+v", got, err, info)
	}
	if n := checks.Load(); n != 1 {
		t.Fatalf("%d checks of the file, want 1", n)
	}
	if err := cli.Revoke(info.ID); err != nil {
		t.Fatal(err)
	}
	wrong := tok[:len(tok)-secretLen] + strings.Repeat("A", secretLen)
	advance(unknownRecheckInterval)
	if _, err := core.Verify(wrong, time.Now()); !errors.Is(err, ErrUnknown) {
		t.Fatalf("wrong secret: %v", err)
	}
	if _, err := core.Verify(tok, time.Now()); err != nil {
		t.Fatalf("revoked before the reload is due: %v, want still accepted", err)
	}
	if n := checks.Load(); n != 1 {
		t.Fatalf("a known id made %d checks of the file, want none", n-1)
	}
	advance(ReloadInterval)
	if _, err := core.Verify(tok, time.Now()); !errors.Is(err, ErrRevoked) {
		t.Fatalf("revoked after the reload is due: %v", err)
	}
}

// Unknown ids cost at most one check of the file per
// unknownRecheckInterval, however many arrive; the others answer from the
// copy in memory. A file that cannot be read still refuses every token.
func TestUnknownRecheckIsBounded(t *testing.T) {
	t.Parallel()
	core, dir := setup(t)
	advance := freeze(core)
	checks := countChecks(core)
	cli := mustOpen(t, dir)
	unknown := "abi_aaaaaaaaaa_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	if _, err := core.Verify("abi_garbage", time.Now()); !errors.Is(err, ErrMalformed) {
		t.Fatal(err)
	}
	if n := checks.Load(); n != 0 {
		t.Fatalf("a malformed token made %d checks", n)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				if _, err := core.Verify(unknown, time.Now()); !errors.Is(err, ErrUnknown) {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := checks.Load(); n != 1 {
		t.Fatalf("800 unknown ids in one interval made %d checks, want 1", n)
	}
	// The file changes, but the interval has not passed: still refused.
	tok, _ := mustCreate(t, cli, "acme", time.Time{})
	advance(unknownRecheckInterval - 1)
	if _, err := core.Verify(tok, time.Now()); !errors.Is(err, ErrUnknown) {
		t.Fatalf("Verify within the interval = %v, want ErrUnknown", err)
	}
	advance(1)
	if _, err := core.Verify(tok, time.Now()); err != nil {
		t.Fatalf("Verify once the interval passed = %v", err)
	}
	if n := checks.Load(); n != 2 {
		t.Fatalf("%d checks, want 2", n)
	}
	path := filepath.Join(dir, TokensFile)
	if err := os.WriteFile(path, []byte(`{"version":1,"tokens":[`), filePerm); err != nil {
		t.Fatal(err)
	}
	advance(unknownRecheckInterval)
	if _, err := core.Verify(unknown, time.Now()); err == nil || errors.Is(err, ErrUnknown) || !strings.Contains(err.Error(), path) {
		t.Fatalf("unknown id on a bad file = %v, want the file's error", err)
	}
}

// freeze stops s's clock at its current reading; advance moves it on.
func freeze(s *Store) (advance func(time.Duration)) {
	var now atomic.Int64
	now.Store(int64(time.Since(s.epoch)))
	// The last regular check is now too: however long the test took to
	// get here, no reload falls due until the test advances the clock.
	s.checked.Store(now.Load())
	s.clock = func() time.Duration { return time.Duration(now.Load()) }
	return func(d time.Duration) { now.Add(int64(d)) }
}

// countChecks counts s's stats of its file from now on.
func countChecks(s *Store) *atomic.Int64 {
	var n atomic.Int64
	s.onCheck = func() { n.Add(1) }
	return &n
}

func waitVerify(t *testing.T, s *Store, tok string, want error) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for {
		_, err := s.Verify(tok, time.Now())
		if errors.Is(err, want) && (want == nil) == (err == nil) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 1s Verify = %v, want %v", err, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestConcurrentCreate(t *testing.T) {
	t.Parallel()
	a, dir := setup(t)
	b := mustOpen(t, dir)
	const goroutines, each = 8, 10
	var (
		mu     sync.Mutex
		tokens = map[string]string{} // id -> token
		wg     sync.WaitGroup
	)
	for g := range goroutines {
		s := a
		if g%2 == 1 {
			s = b
		}
		wg.Go(func() {
			for i := range each {
				tok, info, err := s.Create(fmt.Sprintf("customer-%d-%d", g, i), time.Time{}, "")
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				tokens[info.ID] = tok
				mu.Unlock()
			}
		})
	}
	// Verify concurrently with the writers (for -race).
	wg.Go(func() {
		for range 200 {
			a.Verify("abi_aaaaaaaaaa_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", time.Now())
			b.List()
		}
	})
	wg.Wait()
	if len(tokens) != goroutines*each {
		t.Fatalf("%d distinct tokens, want %d", len(tokens), goroutines*each)
	}
	list, err := mustOpen(t, dir).List()
	if err != nil {
		t.Fatal(err)
	}
	var got, want []string
	for _, tk := range list {
		got = append(got, tk.ID)
	}
	for id := range tokens {
		want = append(want, id)
	}
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Fatalf("file has %d tokens, want %d:\n%v\n%v", len(got), len(want), got, want)
	}
	fresh := mustOpen(t, dir)
	for id, tok := range tokens {
		if info, err := fresh.Verify(tok, time.Now()); err != nil || info.ID != id {
			t.Fatalf("token %s: %+v %v", id, info, err)
		}
	}
}

func TestFileModes(t *testing.T) {
	t.Parallel()
	s, dir := setup(t)
	mustCreate(t, s, "acme", time.Time{})
	for name, want := range map[string]os.FileMode{
		"":         dirPerm | os.ModeDir,
		TokensFile: filePerm,
		LockFile:   filePerm,
	} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %s, want %s", filepath.Join(dir, name), fi.Mode(), want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, TokensFile+".tmp")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary file left behind: %v", err)
	}
}

func TestBadFile(t *testing.T) {
	t.Parallel()
	const hash = `"sha256:0000000000000000000000000000000000000000000000000000000000000000"`
	const created = `"created_at":"2026-01-01T00:00:00Z"`
	for name, tc := range map[string]struct{ content, want string }{
		"empty":           {"", "not valid JSON"},
		"truncated":       {`{"version":1,"tokens":[`, "not valid JSON"},
		"not an object":   {`[]`, "not valid JSON"},
		"trailing data":   {`{"version":1,"tokens":[]} {}`, "data after the top-level object"},
		"trailing ]":      {`{"version":1,"tokens":[]}]`, "data after the top-level object"},
		"trailing }":      {`{"version":1,"tokens":[]} }`, "data after the top-level object"},
		"no version":      {`{"tokens":[]}`, "version 0 is not supported"},
		"newer version":   {`{"version":2,"tokens":[]}`, "version 2 is not supported"},
		"bad id":          {`{"version":1,"tokens":[{"id":"ABC","customer":"a","hash":` + hash + `,` + created + `}]}`, `token 1 (id "ABC"): id is not 10 characters`},
		"bad hash":        {`{"version":1,"tokens":[{"id":"aaaaaaaaaa","customer":"a","hash":"md5:00",` + created + `}]}`, "hash is not sha256:"},
		"short hash":      {`{"version":1,"tokens":[{"id":"aaaaaaaaaa","customer":"a","hash":"sha256:00",` + created + `}]}`, "hash is not sha256:"},
		"no customer":     {`{"version":1,"tokens":[{"id":"aaaaaaaaaa","hash":` + hash + `,` + created + `}]}`, "customer: is required"},
		"no created_at":   {`{"version":1,"tokens":[{"id":"aaaaaaaaaa","customer":"a","hash":` + hash + `}]}`, "created_at is missing"},
		"duplicate id":    {`{"version":1,"tokens":[{"id":"aaaaaaaaaa","customer":"a","hash":` + hash + `,` + created + `},{"id":"aaaaaaaaaa","customer":"b","hash":` + hash + `,` + created + `}]}`, `token 2: id "aaaaaaaaaa" appears twice`},
		"bad time format": {`{"version":1,"tokens":[{"id":"aaaaaaaaaa","customer":"a","hash":` + hash + `,"created_at":"yesterday"}]}`, "not valid JSON"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, TokensFile)
			if err := os.WriteFile(path, []byte(tc.content), filePerm); err != nil {
				t.Fatal(err)
			}
			_, err := Open(dir)
			if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open = %v, want an error naming %s and saying %q", err, path, tc.want)
			}
		})
	}
	// A file an earlier version wrote, when C1 controls were accepted in
	// customers and notes, still reads: a file that cannot be read would
	// refuse every token.
	c1 := t.TempDir()
	old := `{"version":1,"tokens":[{"id":"aaaaaaaaaa","customer":"a\u0085","hash":` + hash + `,` + created + `,"note":"\u009b2J"}]}`
	os.WriteFile(filepath.Join(c1, TokensFile), []byte(old), filePerm)
	if s, err := Open(c1); err != nil {
		t.Fatalf("a file with C1 controls from an earlier version: %v", err)
	} else if l, err := s.List(); err != nil || len(l) != 1 || l[0].Note != "\u009b2J" {
		t.Fatalf("List = %+v %v", l, err)
	}
	// A good file is accepted as written by hand, too.
	dir := t.TempDir()
	good := `{"version":1,"tokens":[{"id":"aaaaaaaaaa","customer":"a","hash":` + hash + `,` + created + `,"future_field":1}]}`
	os.WriteFile(filepath.Join(dir, TokensFile), []byte(good), filePerm)
	if _, err := Open(dir); err != nil {
		t.Fatal(err)
	}
}

// A file that goes bad under a running Store: no token is accepted (fail
// closed: revocations in it can no longer be seen), writers refuse to
// overwrite it, and repairing the file heals the Store.
func TestFileGoesBad(t *testing.T) {
	t.Parallel()
	s, dir := setup(t)
	tok, _ := mustCreate(t, s, "acme", time.Time{})
	path := filepath.Join(dir, TokensFile)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(`{"version":1,"tokens":[`), filePerm); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Second)
	for {
		_, err := s.Verify(tok, time.Now())
		if err != nil {
			if !strings.Contains(err.Error(), path) || errors.Is(err, ErrUnknown) {
				t.Fatalf("Verify on a bad file = %v", err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Verify still accepts the token 1s after the file went bad")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, _, err := s.Create("acme", time.Time{}, ""); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("Create over a bad file = %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != `{"version":1,"tokens":[` {
		t.Fatalf("bad file was overwritten: %s", b)
	}
	if err := os.WriteFile(path, good, filePerm); err != nil {
		t.Fatal(err)
	}
	waitVerify(t, s, tok, nil)
}

func TestParseExpiry(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 10, 15, 4, 5, 999, time.UTC)
	for in, tc := range map[string]struct {
		want    time.Time
		wantErr string
	}{
		"30d":                       {want: now.Add(30 * 24 * time.Hour).Truncate(time.Second)},
		"12h":                       {want: now.Add(12 * time.Hour).Truncate(time.Second)},
		"90m":                       {want: now.Add(90 * time.Minute).Truncate(time.Second)},
		"1d12h30m":                  {want: now.Add(36*time.Hour + 30*time.Minute).Truncate(time.Second)},
		"2027-01-31":                {want: time.Date(2027, 2, 1, 0, 0, 0, 0, time.UTC)},
		"2026-03-10":                {want: time.Date(2026, 3, 11, 0, 0, 0, 0, time.UTC)},
		"2027-01-31T18:00:00+01:00": {want: time.Date(2027, 1, 31, 17, 0, 0, 0, time.UTC)},
		"2027-01-31T18:00:00.5Z":    {want: time.Date(2027, 1, 31, 18, 0, 0, 5e8, time.UTC)},
		"36500d":                    {want: now.Add(36500 * 24 * time.Hour).Truncate(time.Second)},
		"":                          {wantErr: "is not understood: use a duration such as 30d"},
		"30":                        {wantErr: "is not understood"},
		"30s":                       {wantErr: "is not understood"},
		"-5d":                       {wantErr: "is not understood"},
		"1 day":                     {wantErr: "is not understood"},
		"d":                         {wantErr: "is not understood"},
		"2027-02-30":                {wantErr: "is not understood"},
		"0d":                        {wantErr: "is zero"},
		"36501d":                    {wantErr: "longer than the limit of 36500 days"},
		"99999999999999999999d":     {wantErr: "longer than the limit"},
		"2026-03-09":                {wantErr: `expiry "2026-03-09" is 2026-03-10T00:00:00Z, which is not in the future (now 2026-03-10T15:04:05Z)`},
		"2026-03-10T15:04:05Z":      {wantErr: "not in the future"},
		// Dates and times have the same 100-year bound; 9999-12-31
		// would end on 10000-01-01, which JSON cannot hold.
		"2125-01-31":           {want: time.Date(2125, 2, 1, 0, 0, 0, 0, time.UTC)},
		"2127-01-31":           {wantErr: "longer than the limit of 36500 days"},
		"9999-12-31":           {wantErr: "longer than the limit of 36500 days"},
		"9999-12-31T23:59:59Z": {wantErr: "longer than the limit"},
	} {
		got, err := ParseExpiry(in, now)
		switch {
		case tc.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseExpiry(%q) = %v, %v; want an error containing %q", in, got, err, tc.wantErr)
			}
		case err != nil || !got.Equal(tc.want) || got.Location() != time.UTC:
			t.Errorf("ParseExpiry(%q) = %v, %v; want %v", in, got, err, tc.want)
		}
	}
}

// BenchmarkVerify is the per-request cost of accepting a token.
func BenchmarkVerify(b *testing.B) {
	s, _ := setupB(b)
	tok := createB(b, s)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Verify(tok, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyLatency reports percentiles of single calls. Each sample
// includes two clock reads (tens of ns), and ns/op also includes storing
// the samples, so read ns/op from BenchmarkVerify.
func BenchmarkVerifyLatency(b *testing.B) {
	s, _ := setupB(b)
	tok := createB(b, s)
	now := time.Now()
	samples := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if _, err := s.Verify(tok, now); err != nil {
			b.Fatal(err)
		}
		samples = append(samples, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(samples)
	for _, p := range []float64{50, 95, 99, 99.9} {
		b.ReportMetric(float64(samples[int(float64(len(samples)-1)*p/100)].Nanoseconds()), fmt.Sprintf("p%g-ns", p))
	}
}

// BenchmarkVerifyParallel is Verify from every CPU at once, as under HTTP
// load, including the periodic stat.
func BenchmarkVerifyParallel(b *testing.B) {
	s, _ := setupB(b)
	tok := createB(b, s)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Verify(tok, time.Now()); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func setupB(b *testing.B) (*Store, string) {
	dir := b.TempDir()
	s, err := Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	return s, dir
}

// createB makes one token and adds 999 more records to the file (the map
// lookup should not depend on them, but a real file has more than one) and
// returns the token.
func createB(b *testing.B, s *Store) string {
	tok, _, err := s.Create("customer", time.Time{}, "")
	if err != nil {
		b.Fatal(err)
	}
	err = s.update(func(f *snapshot) error {
		for i := range 999 {
			id, err := newID()
			if err != nil {
				return err
			}
			f.order = append(f.order, &record{Token: Token{ID: id, Customer: fmt.Sprintf("customer-%d", i), CreatedAt: time.Now().UTC()}})
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return tok
}

// TestTokenID: the id of a well-formed token, whatever its state, and
// nothing for anything else (the whole form is checked, not just a prefix).
func TestTokenID(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	tok, info := mustCreate(t, s, "acme", time.Time{})
	if err := s.Revoke(info.ID); err != nil {
		t.Fatal(err)
	}
	if id, ok := TokenID(tok); !ok || id != info.ID || !ValidTokenID(id) {
		t.Fatalf("TokenID(a revoked token) = %q, %v; want %q", id, ok, info.ID)
	}
	for _, bad := range []string{"", "abcdefghi", "abcdefghijk", "ABCDEFGHIJ", "abcdefghi0", "abcde-ghij"} {
		if ValidTokenID(bad) {
			t.Errorf("ValidTokenID(%q)", bad)
		}
	}
	for _, bad := range []string{"", "abi_from_env", Prefix + info.ID, Prefix + info.ID + "_", tok[:len(tok)-1], tok + "x",
		"Bearer " + tok, strings.ToUpper(tok[:4]) + tok[4:]} {
		if id, ok := TokenID(bad); ok || id != "" {
			t.Errorf("TokenID(%q) = %q, %v", bad, id, ok)
		}
	}
}
