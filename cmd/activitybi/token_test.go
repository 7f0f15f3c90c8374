package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/activitybi/activitybi/internal/auth"
)

var tokenLineRE = regexp.MustCompile(`^abi_([a-z2-7]{10})_[A-Za-z0-9_-]{43}\n$`)

// createToken runs `token create` and returns the token and its id, checking
// that stdout is the token alone.
func (e *env) createToken(args ...string) (tok, id, stderr string) {
	e.t.Helper()
	out, errs, code := e.run(nil, append([]string{"token", "create"}, args...)...)
	if code != 0 {
		e.t.Fatalf("token create %v: exit %d\n%s", args, code, errs)
	}
	m := tokenLineRE.FindStringSubmatch(out)
	if m == nil {
		e.t.Fatalf("token create stdout is not one token line: %q", out)
	}
	return strings.TrimSuffix(out, "\n"), m[1], errs
}

func TestTokenCLI(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tok, id, errs := e.createToken("--customer", "acme", "--expires", "30d", "--note", "ci bot")
	if !strings.Contains(errs, "token "+id+` for customer "acme", expires 20`) || !strings.Contains(errs, "shown only once") {
		t.Errorf("create stderr: %q", errs)
	}
	secret := tok[len("abi_")+10+1:]
	other, otherID, _ := e.createToken("--customer", "globex")

	// The core's side: the token maps to its customer.
	store, err := auth.Open(e.dataDir)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := store.Verify(tok, time.Now()); err != nil || info.Customer != "acme" || info.ID != id {
		t.Fatalf("Verify: %+v %v", info, err)
	}
	if fi, err := os.Stat(filepath.Join(e.dataDir, auth.TokensFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", fi, err)
	}

	out := e.mustRun(nil, "token", "list")
	for _, want := range []string{
		`(?m)^ID +CUSTOMER +STATE +CREATED +EXPIRES +NOTE$`,
		`(?m)^` + id + ` +acme +active +\S+Z +\S+Z +ci bot$`,
		`(?m)^` + otherID + ` +globex +active +\S+Z +never +$`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("token list lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, secret) || strings.Contains(out, "sha256") {
		t.Fatalf("token list shows a secret or hash:\n%s", out)
	}

	if out := e.mustRun(nil, "token", "revoke", id); !strings.Contains(out, "revoked token "+id) {
		t.Errorf("revoke: %q", out)
	}
	out = e.mustRun(nil, "token", "list", "--json")
	var rows []struct {
		ID, Customer, State, Note string
		RevokedAt                 time.Time `json:"revoked_at"`
	}
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("list --json: %v\n%s", err, out)
	}
	if len(rows) != 2 || rows[0].ID != id || rows[0].State != "revoked" || rows[0].RevokedAt.IsZero() ||
		rows[1].ID != otherID || rows[1].State != "active" {
		t.Fatalf("list --json after revoke:\n%s", out)
	}
	if strings.Contains(out, secret) || strings.Contains(out, "sha256") {
		t.Fatalf("token list --json shows a secret or hash:\n%s", out)
	}
	// A running reader sees the revoke (the core's path).
	deadline := time.Now().Add(time.Second)
	for {
		_, err := store.Verify(tok, time.Now())
		if errors.Is(err, auth.ErrRevoked) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("1s after revoke Verify = %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := store.Verify(other, time.Now()); err != nil {
		t.Fatalf("the other token: %v", err)
	}
	// Revoking again is fine, and the whole token works in place of the id.
	if out := e.mustRun(nil, "token", "revoke", other); !strings.Contains(out, "revoked token "+otherID) || strings.Contains(out, other) {
		t.Errorf("revoke by token: %q", out)
	}
	e.mustRun(nil, "token", "revoke", id)
}

func TestTokenCLIErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"no customer":     {[]string{"token", "create"}, "--customer is required"},
		"empty customer":  {[]string{"token", "create", "--customer", ""}, "customer: is required"},
		"control in note": {[]string{"token", "create", "--customer", "a", "--note", "a\x01"}, "note: contains control characters"},
		"bad expires":     {[]string{"token", "create", "--customer", "a", "--expires", "soon"}, `--expires: expiry "soon" is not understood: use a duration such as 30d`},
		"past expires":    {[]string{"token", "create", "--customer", "a", "--expires", "2001-01-01"}, "not in the future"},
		"unknown id":      {[]string{"token", "revoke", "abcdefghij"}, `no token has id "abcdefghij"`},
		// A token pasted with a stray character before it: the secret
		// must not come back in the error.
		"mangled token":    {[]string{"token", "revoke", "xabi_abcdefghij_SECRETSECRETSECRETSECRETSECRETSECRET0"}, "that is not a token id"},
		"spaced token":     {[]string{"token", "revoke", " abi_abcdefghij_SECRETSECRETSECRETSECRETSECRETSECRET0"}, `no token has id "abcdefghij"`},
		"no id":            {[]string{"token", "revoke"}, "revoke takes one token id"},
		"extra create arg": {[]string{"token", "create", "--customer", "a", "b"}, "unknown command"},
	} {
		out, errs, code := e.run(nil, tc.args...)
		if strings.Contains(errs, "SECRET") {
			t.Errorf("%s: the error repeats the token's secret: %q", name, errs)
		}
		if code != 1 || out != "" || !strings.Contains(errs, tc.want) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit 1 and %q", name, code, out, errs, tc.want)
		}
	}
	// Nothing was created.
	out, errs, code := e.run(nil, "token", "list")
	if code != 0 || strings.Count(out, "\n") != 1 || !strings.Contains(errs, "no tokens in") {
		t.Fatalf("list after failures: exit %d\n%s\n%s", code, out, errs)
	}
	// A corrupt token file is named.
	path := filepath.Join(e.dataDir, auth.TokensFile)
	os.MkdirAll(e.dataDir, 0o700)
	if err := os.WriteFile(path, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"token", "list"}, {"token", "create", "--customer", "a"}} {
		if _, errs, code := e.run(nil, args...); code != 1 || !strings.Contains(errs, path) {
			t.Errorf("%v on a corrupt file: exit %d, %q", args, code, errs)
		}
	}
}
