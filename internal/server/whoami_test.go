package server

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/activitybi/activitybi/internal/auth"
	"github.com/activitybi/activitybi/internal/spool"
)

// TestWhoAmI: GET /v1/whoami answers a token's customer and id, checked as
// /v1/events checks it, and which of the asked token ids are (or were) the
// same customer's — never anything about another customer's tokens.
func TestWhoAmI(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	store, err := auth.Open(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	create := func(customer string) (string, auth.Token) {
		tok, info, err := store.Create(customer, time.Time{}, "")
		if err != nil {
			t.Fatal(err)
		}
		return tok, info
	}
	alice, aliceInfo := create("alice")
	_, aliceOld := create("alice")
	if err := store.Revoke(aliceOld.ID); err != nil {
		t.Fatal(err)
	}
	revoked, revokedInfo := create("alice")
	if err := store.Revoke(revokedInfo.ID); err != nil {
		t.Fatal(err)
	}
	_, bob := create("bob")
	b := setupHTTP(t, spool.Options{}, func(o *Options) {
		o.DataDir = dataDir
		o.VerifyToken = func(tok string) (Principal, error) {
			info, err := store.Verify(tok, time.Now())
			if err != nil {
				return Principal{}, err
			}
			return Principal{Customer: info.Customer, TokenID: info.ID}, nil
		}
	})
	get := func(token string, ids ...string) (int, string) {
		t.Helper()
		q := url.Values{"token_id": ids}
		req, _ := http.NewRequest(http.MethodGet, b.url+"/v1/whoami?"+q.Encode(), nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	decode := func(body string) WhoAmIResponse {
		t.Helper()
		var w WhoAmIResponse
		if err := json.Unmarshal([]byte(body), &w); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
		return w
	}

	code, body := get(alice)
	if w := decode(body); code != http.StatusOK || w.Customer != "alice" || w.TokenID != aliceInfo.ID || w.SameCustomer != nil {
		t.Fatalf("whoami: %d %s", code, body)
	}
	code, body = get(alice, bob.ID, aliceOld.ID, "zzzzzzzzzz", aliceInfo.ID, aliceOld.ID)
	if w := decode(body); code != http.StatusOK || fmt.Sprint(w.SameCustomer) != fmt.Sprint([]string{aliceOld.ID, aliceInfo.ID}) {
		t.Fatalf("whoami with token ids: %d %s; want %s and %s, not bob's %s", code, body, aliceOld.ID, aliceInfo.ID, bob.ID)
	}
	for name, tc := range map[string]struct {
		token string
		ids   []string
		code  int
	}{
		"no token":      {"", nil, http.StatusUnauthorized},
		"revoked token": {revoked, []string{aliceInfo.ID}, http.StatusUnauthorized},
		"unknown token": {"abi_zzzzzzzzzz_" + strings.Repeat("A", 43), nil, http.StatusUnauthorized},
		"too many ids":  {alice, strings.Fields(strings.Repeat("a ", maxWhoAmITokenIDs+1)), http.StatusBadRequest},
	} {
		code, body := get(tc.token, tc.ids...)
		// (A refused token's own customer may be named, as /v1/events does.)
		if code != tc.code || strings.Contains(body, "bob") || strings.Contains(body, "same_customer") {
			t.Errorf("%s: %d %s; want %d and no other customer's token", name, code, body, tc.code)
		}
	}
	if code, _, body := b.post(t, "/v1/whoami", alice, "application/json", nil); code != http.StatusMethodNotAllowed {
		t.Errorf("POST /v1/whoami: %d %s", code, body)
	}
}
