// Package redact hides secrets in values that are shown to people: in
// `activitybi config`, in error messages and in logs.
package redact

import (
	"net/url"
	"strings"
)

// Hidden stands for the user information of a URL that has no password:
// a bare "user@" part is often a token (https://TOKEN@host), so it is not
// repeated either.
const Hidden = "REDACTED"

// URL returns raw fit to show: a password in its user information becomes
// "xxxxx" (the user name stays, it says which account), user information
// without a password becomes "REDACTED", query values whose names look like
// credentials (password, secret, token, key, ...) become "xxxxx", and the
// fragment, never part of a location here, is left out.
//
// A raw that does not parse as a URL is not repeated at all, in case the
// password is what broke it; nor is one with an "@" that url.Parse did not
// take for user information (in a path, an opaque part or the query, as in
// "redis:/user:pa@ss"), beyond its scheme: the "@" may end a password.
func URL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(not shown: not a URL)"
	}
	if !atOnlyInQueryValues(u) {
		const hidden = "(not repeated: it holds an @, which may end a password)"
		if u.Scheme != "" {
			return u.Scheme + ": " + hidden
		}
		return hidden
	}
	c := *u
	if c.User != nil {
		if _, ok := c.User.Password(); ok {
			c.User = url.UserPassword(c.User.Username(), "xxxxx")
		} else {
			c.User = url.User(Hidden)
		}
	}
	if c.RawQuery != "" {
		q, err := url.ParseQuery(c.RawQuery)
		if err != nil {
			c.RawQuery = "(not shown)"
		} else {
			masked := false
			for k, vs := range q {
				if credentialName(k) {
					for i := range vs {
						vs[i] = "xxxxx"
					}
					masked = true
				}
			}
			if masked {
				c.RawQuery = q.Encode()
			}
		}
	}
	c.Fragment, c.RawFragment = "", ""
	return c.String()
}

// Location is u as scheme://host/path only: no user information, query or
// fragment at all, for messages about a URL that should carry none of them
// (where a token put there by mistake would be, under any name).
func Location(u *url.URL) string {
	c := *u
	c.User, c.RawQuery, c.ForceQuery, c.Fragment, c.RawFragment = nil, "", false, "", ""
	return c.String()
}

// atOnlyInQueryValues reports whether every "@" of u outside its user
// information (if any) is in a query value that is masked anyway.
func atOnlyInQueryValues(u *url.URL) bool {
	if strings.Contains(u.Path, "@") || strings.Contains(u.Opaque, "@") || strings.Contains(u.Fragment, "@") ||
		strings.Contains(u.Host, "@") {
		return false
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return false
	}
	for k, vs := range q {
		if strings.Contains(k, "@") {
			return false
		}
		for _, v := range vs {
			if strings.Contains(v, "@") && !credentialName(k) {
				return false
			}
		}
	}
	return true
}

// credentialName reports whether a query parameter's name looks like it
// carries a credential.
func credentialName(k string) bool {
	k = strings.ToLower(k)
	for _, s := range []string{"pass", "pwd", "secret", "token", "key", "auth", "credential", "signature", "sig"} {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}
