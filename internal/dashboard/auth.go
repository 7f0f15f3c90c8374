package dashboard

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Sign-in defaults and limits (server mode).
const (
	// DefaultSessionTTL is how long a sign-in lasts: a working day.
	DefaultSessionTTL = 12 * time.Hour
	// DefaultMaxSessions bounds the sign-ins held in memory; at the limit
	// a new sign-in evicts the oldest (limit "sessions").
	DefaultMaxSessions = 10_000
	// MaxLoginBody bounds the sign-in form: a token is under 100 bytes
	// (limit "login_body").
	MaxLoginBody = 4 << 10
	// sessionIDBytes is the entropy of a session id (256 bits).
	sessionIDBytes = 32
	// cookieName is the session cookie (server mode only: local mode has
	// no sign-in). It is always Secure, whatever the request's own
	// transport: a server-mode core listens beyond loopback, where either
	// it serves TLS itself or a proxy in front of it ends TLS (--insecure-
	// listen), and the core cannot tell a proxy's plain-HTTP request from a
	// browser's. The __Host- prefix makes the browser insist on Secure,
	// Path=/ and no Domain, so no other host or path can plant or read it.
	// Browsers keep a Secure cookie only from an HTTPS page (or
	// localhost): over plain HTTP the sign-in does not stick, and the
	// sign-in page says why (plainHTTP).
	cookieName = "__Host-abi_session"
	// TokenPrefix starts every activitybi bearer token.
	TokenPrefix = "abi_"
)

// contentSecurityPolicy allows the page's own stylesheet and nothing
// else: no script at all, no frames, forms posting only here. Charts are
// inline SVG (markup, not script), so they need nothing.
const contentSecurityPolicy = "default-src 'none'; style-src 'self'; img-src 'self' data:; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// Auth says who may open the dashboard and as which customer. Build it
// with Local or Tokens.
type Auth struct {
	local  string
	verify func(token string) (customer string, err error)
}

// Local serves customer, the identity configured for this machine,
// without a sign-in — but only to requests that come from and name the
// loopback interface (a page on another site that rebinds its DNS name to
// 127.0.0.1 is refused by its Host header).
func Local(customer string) Auth { return Auth{local: customer} }

// Tokens requires a sign-in with an activitybi bearer token (abi_...).
// verify maps a token to its customer, or says why it is not accepted;
// it is asked again on every page view, so a revoked token ends its
// sign-in at the next click.
func Tokens(verify func(token string) (customer string, err error)) Auth {
	return Auth{verify: verify}
}

func (a Auth) server() bool { return a.verify != nil }

func (a Auth) validate() error {
	switch {
	case a.local != "" && a.verify != nil:
		return errors.New("dashboard: Auth is either Local or Tokens, not both")
	case a.local == "" && a.verify == nil:
		return errors.New("dashboard: Options.Auth is required: Local(customer) for a loopback core, Tokens(verify) in server mode")
	}
	return nil
}

// secure sets the headers every answer carries and, in local mode,
// refuses what does not come from this machine.
func (d *Dashboard) secure(next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "refused: this form was sent from another site (cross-origin request); open the dashboard and submit it there", http.StatusForbidden)
	}))
	protected := cop.Handler(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		if !d.opts.Auth.server() {
			if !loopbackAddr(r.RemoteAddr) {
				http.Error(w, "refused: this dashboard serves this machine only (local mode); use a token sign-in in server mode to open it from elsewhere", http.StatusForbidden)
				return
			}
			if !loopbackHost(r.Host) {
				http.Error(w, fmt.Sprintf("refused: Host %q is not this machine; open the dashboard at http://127.0.0.1 or http://localhost (a page that points its own name at 127.0.0.1 is refused)", clipValue(r.Host)), http.StatusForbidden)
				return
			}
			if proxied(r) {
				http.Error(w, "refused: this request came through a proxy, and a local-mode dashboard needs no sign-in, so it serves requests made on this machine only; behind a proxy, run the core in server mode (token sign-in)", http.StatusForbidden)
				return
			}
		}
		if r.Header.Get("X-Activitybi-Customer") != "" {
			http.Error(w, "refused: a request cannot name a customer; the dashboard shows the customer you are signed in as", http.StatusBadRequest)
			return
		}
		protected.ServeHTTP(w, r)
	})
}

// loopbackHost reports whether a Host header names this machine:
// localhost or a loopback address, with or without a port.
func loopbackHost(host string) bool {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(h)
	return err == nil && ip.IsLoopback()
}

// proxied reports whether r says it was forwarded by a proxy. A reverse
// proxy on this machine (nginx's proxy_pass http://127.0.0.1:PORT) makes
// a request from anywhere look local: loopback address, loopback Host. In
// local mode, which has no sign-in, such a request is refused.
func proxied(r *http.Request) bool {
	for _, k := range []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Real-Ip"} {
		if _, ok := r.Header[k]; ok {
			return true
		}
	}
	return false
}

// loopbackAddr reports whether a RemoteAddr is a loopback address.
func loopbackAddr(addr string) bool {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return false
	}
	return ap.Addr().Unmap().IsLoopback()
}

// session is one server-mode sign-in. The token is kept (in memory only)
// to ask verify again on every view: that is what makes a revocation end
// the sign-in at once, as it does for MCP sessions.
type session struct {
	customer string
	token    string
	csrf     string
	created  time.Time
	expires  time.Time
}

// sessionStore maps hashed session ids to sign-ins. Sessions live in this
// process only: a restart signs everyone out.
type sessionStore struct {
	mu  sync.Mutex // guards m
	m   map[string]*session
	ttl time.Duration
	max int
	now func() time.Time
	met *metrics
}

func newSessionStore(ttl time.Duration, max int, now func() time.Time, m *metrics) *sessionStore {
	return &sessionStore{m: map[string]*session{}, ttl: ttl, max: max, now: now, met: m}
}

// key hashes an id, so the map never holds a cookie value.
func key(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

func randomID() string {
	b := make([]byte, sessionIDBytes)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *sessionStore) create(customer, token string) (string, *session) {
	now := s.now()
	id := randomID()
	ss := &session{customer: customer, token: token, csrf: randomID(), created: now, expires: now.Add(s.ttl)}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= s.max {
		for k, v := range s.m {
			if !now.Before(v.expires) {
				delete(s.m, k)
			}
		}
	}
	for len(s.m) >= s.max {
		var oldest string
		for k, v := range s.m {
			if oldest == "" || v.created.Before(s.m[oldest].created) {
				oldest = k
			}
		}
		delete(s.m, oldest)
		s.met.limit("sessions")
	}
	s.m[key(id)] = ss
	return id, ss
}

func (s *sessionStore) get(id string) *session {
	if id == "" {
		return nil
	}
	k := key(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.m[k]
	if ss != nil && !s.now().Before(ss.expires) {
		delete(s.m, k)
		return nil
	}
	return ss
}

func (s *sessionStore) delete(id string) {
	s.mu.Lock()
	delete(s.m, key(id))
	s.mu.Unlock()
}

func (s *sessionStore) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// plainHTTP reports whether r looks like a browser's plain-HTTP request
// from another machine: no TLS here, no proxy saying it ended TLS
// (X-Forwarded-Proto or Forwarded proto=https), and a Host that is not
// this machine (browsers treat http://localhost as secure). It only
// chooses a warning on the sign-in page: the cookie is Secure either way.
func plainHTTP(r *http.Request) bool {
	if r.TLS != nil || loopbackHost(r.Host) || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		return false
	}
	for _, f := range r.Header.Values("Forwarded") {
		if strings.Contains(strings.ToLower(f), "proto=https") {
			return false
		}
	}
	return true
}

// plainHTTPWarning is the sign-in page's warning for plainHTTP.
const plainHTTPWarning = "This page did not come over HTTPS, as far as the core can tell. The sign-in cookie is Secure: a browser keeps it only over HTTPS, so signing in here may just bring you back to this page. Serve the core with --tls-cert and --tls-key, or behind a proxy that ends TLS (and sets X-Forwarded-Proto: https to quiet this warning)."

func sessionID(r *http.Request) string {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return ""
	}
	return c.Value
}

// authenticate returns the customer a request is for. In token mode
// without a valid sign-in it redirects to /login and returns ok false.
func (d *Dashboard) authenticate(w http.ResponseWriter, r *http.Request) (customer string, s *session, ok bool) {
	a := d.opts.Auth
	if !a.server() {
		return a.local, nil, true
	}
	id := sessionID(r)
	s = d.sessions.get(id)
	reason := ""
	switch {
	case s == nil && id != "":
		reason = "expired"
	case s != nil:
		c, err := a.verify(s.token)
		if err == nil && c == s.customer {
			return s.customer, s, true
		}
		d.sessions.delete(id)
		reason = "revoked"
	}
	q := url.Values{"next": {r.URL.RequestURI()}}
	if reason != "" {
		q.Set("reason", reason)
		clearCookie(w)
	}
	http.Redirect(w, r, "/login?"+q.Encode(), http.StatusSeeOther)
	return "", nil, false
}

// ErrNotSignedIn is Customer's answer for a request without a valid
// dashboard sign-in.
var ErrNotSignedIn = errors.New("not signed in to the dashboard")

// Customer returns the customer a request is signed in as on the
// dashboard, without answering it: in local mode the local customer, for a
// request from a loopback address naming a loopback host; in server mode
// the customer of the request's session cookie, whose token is verified
// again. The core's GET /artifacts/{id} uses it after the bearer token, so
// that the cards and files the Queries page links to open with the
// dashboard's sign-in (the cookie is SameSite=Strict: only this site's
// pages send it).
func (d *Dashboard) Customer(r *http.Request) (string, error) {
	a := d.opts.Auth
	if !a.server() {
		if !loopbackAddr(r.RemoteAddr) || !loopbackHost(r.Host) || proxied(r) {
			return "", fmt.Errorf("%w: the dashboard serves this machine only (local mode)", ErrNotSignedIn)
		}
		return a.local, nil
	}
	id := sessionID(r)
	s := d.sessions.get(id)
	if s == nil {
		return "", ErrNotSignedIn
	}
	c, err := a.verify(s.token)
	if err != nil || c != s.customer {
		d.sessions.delete(id)
		return "", fmt.Errorf("%w: the sign-in's token is no longer accepted", ErrNotSignedIn)
	}
	return c, nil
}

func clearCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
}

// loginView is what login.html draws.
type loginView struct {
	Error, Notice, Warning, Next string
}

// reasons are the notices /login shows for ?reason=; only these words are
// accepted, so the page never echoes text from the address.
var reasons = map[string]string{
	"expired": "Your sign-in expired. Sign in again with your token.",
	"revoked": "Your token is no longer accepted (revoked or expired). Sign in with a current token.",
	"out":     "You are signed out.",
}

func (d *Dashboard) loginForm(w http.ResponseWriter, r *http.Request) {
	if !d.opts.Auth.server() {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	if s := d.sessions.get(sessionID(r)); s != nil {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	v := loginView{Next: safeNext(r.URL.Query().Get("next")), Notice: reasons[r.URL.Query().Get("reason")]}
	if plainHTTP(r) {
		v.Warning = plainHTTPWarning
	}
	d.write(w, d.login, v, http.StatusOK)
}

func (d *Dashboard) loginSubmit(w http.ResponseWriter, r *http.Request) {
	a := d.opts.Auth
	if !a.server() {
		http.Error(w, "this dashboard runs in local mode and has no sign-in", http.StatusNotFound)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxLoginBody)
	if err := r.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		status := http.StatusBadRequest
		msg := "The sign-in form could not be read: " + err.Error()
		if errors.As(err, &mbe) {
			d.m.limit("login_body")
			status = http.StatusRequestEntityTooLarge
			msg = fmt.Sprintf("The sign-in form is larger than %d bytes; paste only the token.", MaxLoginBody)
		}
		d.m.logins.WithLabelValues("bad_request").Inc()
		d.write(w, d.login, loginView{Error: msg}, status)
		return
	}
	next := safeNext(r.PostForm.Get("next"))
	token := strings.TrimSpace(r.PostForm.Get("token"))
	fail := func(status int, outcome, msg string) {
		d.m.logins.WithLabelValues(outcome).Inc()
		v := loginView{Error: msg, Next: next}
		if plainHTTP(r) {
			v.Warning = plainHTTPWarning
		}
		d.write(w, d.login, v, status)
	}
	switch {
	case token == "":
		fail(http.StatusBadRequest, "bad_request", "Paste your token (abi_...) to sign in. `activitybi token create --customer NAME` makes one.")
		return
	case !strings.HasPrefix(token, TokenPrefix):
		fail(http.StatusUnauthorized, "refused", "That is not an activitybi token: tokens look like abi_<id>_<secret> (`activitybi token create --customer NAME` prints one).")
		return
	}
	customer, err := a.verify(token)
	if err != nil || customer == "" {
		why := "it names no customer"
		if err != nil {
			why = err.Error()
		}
		fail(http.StatusUnauthorized, "refused", "That token was not accepted: "+why+".")
		return
	}
	id, _ := d.sessions.create(customer, token)
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: id, Path: "/",
		MaxAge: int(d.opts.SessionTTL / time.Second), HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
	d.m.logins.WithLabelValues("ok").Inc()
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (d *Dashboard) logout(w http.ResponseWriter, r *http.Request) {
	if !d.opts.Auth.server() {
		http.Error(w, "this dashboard runs in local mode and has no sign-in", http.StatusNotFound)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxLoginBody)
	_ = r.ParseForm()
	id := sessionID(r)
	if s := d.sessions.get(id); s != nil {
		if subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf")), []byte(s.csrf)) != 1 {
			http.Error(w, "refused: the sign-out form is stale or came from elsewhere; use the Sign out button of a page you just opened", http.StatusForbidden)
			return
		}
		d.sessions.delete(id)
		d.m.logins.WithLabelValues("logout").Inc()
	}
	clearCookie(w)
	http.Redirect(w, r, "/login?reason=out", http.StatusSeeOther)
}

// safeNext keeps a post-sign-in redirect on this site: a path, never a
// scheme, host or protocol-relative address.
func safeNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n\t") {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || strings.HasPrefix(u.Path, "/login") {
		return "/"
	}
	return next
}
