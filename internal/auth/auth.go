// Package auth keeps the HTTP bearer tokens that bind a request to one
// customer. A token is shown once, when it is created; the data directory
// keeps only a hash of its secret, in tokens.json.
//
// Verify runs on every HTTP request, so it works on an in-memory copy of the
// file and notices changes (a `token revoke` from the CLI, say) by stat'ing
// the file at most every ReloadInterval; a token whose id it does not know
// makes it look again at once (at most every unknownRecheckInterval), so a
// token just created by another process works on its first use. Writers
// (Create, Revoke) take a flock on tokens.lock and replace the file
// atomically, so any number of processes can share a data directory and
// readers never see a half-written file.
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/activitybi/activitybi/internal/event"
)

// Token format: "abi_" + id + "_" + secret.
const (
	// Prefix starts every token, so a leaked one is recognisable (secret
	// scanners, logs) and a wrong kind of credential fails fast.
	Prefix = "abi_"
	// idLen characters of idAlphabet: 50 random bits. The id is not secret:
	// it names the token in `token list` and `token revoke` and in logs.
	idLen = 10
	// IDLen is idLen, for messages that tell people what an id looks like.
	IDLen = idLen
	// idAlphabet is RFC 4648 base32 in lower case.
	idAlphabet = "abcdefghijklmnopqrstuvwxyz234567"
	// secretBytes of crypto/rand, written as unpadded base64url (43 chars).
	secretBytes = 32
	secretLen   = (secretBytes*8 + 5) / 6
	tokenLen    = len(Prefix) + idLen + 1 + secretLen
)

// ReloadInterval is how often, at most, Verify stats tokens.json to pick up
// changes made by other processes. A revoke takes effect within this interval
// (plus the time of one reload) in every running process.
const ReloadInterval = 250 * time.Millisecond

// unknownRecheckInterval is how often, at most, Verify stats tokens.json
// out of turn because a token's id is not in its copy: a token created by
// another process (`activitybi token create` in a script) must work at its
// first use, not up to ReloadInterval later. The id of a token is not
// secret and costs nothing to make up, so without a bound a flood of
// requests with unknown ids would make every one a stat (and a reload
// whenever the file changes); with it they cost at most one stat per
// interval, 200 a second, and requests that lose the race answer from the
// current copy. The cost of the bound: a token created within this interval
// after another unknown id's check may be refused once.
const unknownRecheckInterval = 5 * time.Millisecond

// secretEncoding rejects non-zero trailing bits, so each secret has exactly
// one spelling.
var secretEncoding = base64.RawURLEncoding.Strict()

// Errors Verify returns for a token it refuses; test with errors.Is. Any
// other error means the token file could not be read, and no token is
// accepted until it can.
var (
	// ErrMalformed: not of the form abi_<id>_<secret>.
	ErrMalformed = errors.New("malformed token")
	// ErrUnknown: no such id, or the secret does not match it. The two are
	// deliberately not told apart. Revoke wraps it for an unknown id.
	ErrUnknown = errors.New("unknown token")
	// ErrRevoked: the token was revoked.
	ErrRevoked = errors.New("token revoked")
	// ErrExpired: the token's expiry has passed.
	ErrExpired = errors.New("token expired")
)

// Token states, as Token.State reports them.
const (
	StateActive  = "active"
	StateExpired = "expired"
	StateRevoked = "revoked"
)

// Token describes one token. It never carries the secret or its hash.
type Token struct {
	ID       string `json:"id"`
	Customer string `json:"customer"`
	// CreatedAt is in UTC, to the second.
	CreatedAt time.Time `json:"created_at"`
	// ExpiresAt is zero for a token that never expires.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// RevokedAt is zero for a token that was never revoked.
	RevokedAt time.Time `json:"revoked_at,omitzero"`
	Note      string    `json:"note,omitempty"`
}

// State is StateRevoked, StateExpired or StateActive at now. Revocation wins
// over expiry: it is the more deliberate act.
func (t Token) State(now time.Time) string {
	switch {
	case !t.RevokedAt.IsZero():
		return StateRevoked
	case !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt):
		return StateExpired
	default:
		return StateActive
	}
}

// record is a token as held in memory: its description and the hash of its
// secret.
type record struct {
	Token
	hash [sha256.Size]byte
}

// snapshot is one parsed version of tokens.json. It is never modified after
// it is published, so readers need no lock.
type snapshot struct {
	byID map[string]*record
	// order is the file's order (creation order), for List.
	order []*record
	// fi identifies the file this was read from; nil when there was none.
	fi os.FileInfo
	// err is set when the file could not be read or parsed; then no token
	// is accepted (fail closed) until the file changes and reads cleanly.
	err error
}

// Store is the token file of one data directory. It is safe for concurrent
// use, and any number of Stores (in any number of processes) may share a
// directory.
//
// Lock order: the flock on tokens.lock, then mu.
type Store struct {
	dir  string
	path string
	// epoch is the monotonic base of checked.
	epoch time.Time
	// checked is when (ns since epoch) the file was last stat'ed; the
	// goroutine that advances it with a CAS does the check, others go on
	// with the current snapshot.
	checked atomic.Int64
	// rechecked is when (ns since epoch) Verify last stat'ed the file out
	// of turn for an unknown id; the CAS winner does it, as for checked.
	rechecked atomic.Int64
	// clock, when set (by tests), replaces time.Since(epoch).
	clock func() time.Duration
	// onCheck, when set (by tests), is called for every stat of the
	// file, under mu.
	onCheck func()
	// mu serialises reloads and the publishing of snapshots.
	mu   sync.Mutex
	snap atomic.Pointer[snapshot]
}

// Open reads dataDir's token file. A missing file (or directory) is an empty
// store; a file that cannot be parsed is an error naming it.
func Open(dataDir string) (*Store, error) {
	s := &Store{dir: dataDir, path: filepath.Join(dataDir, TokensFile), epoch: time.Now()}
	s.snap.Store(&snapshot{})
	s.rechecked.Store(-int64(unknownRecheckInterval))
	snap := s.refresh(true)
	if snap.err != nil {
		return nil, snap.err
	}
	return s, nil
}

// Path is the token file's path.
func (s *Store) Path() string { return s.path }

// Create makes a token for customer and returns it, the only time the secret
// is available, with its description. A zero expiresAt means it never
// expires; otherwise expiresAt must be in the future.
func (s *Store) Create(customer string, expiresAt time.Time, note string) (string, Token, error) {
	if err := checkString("customer", customer, true, true); err != nil {
		return "", Token{}, err
	}
	if err := checkString("note", note, false, true); err != nil {
		return "", Token{}, err
	}
	now := time.Now().UTC()
	if !expiresAt.IsZero() && !expiresAt.After(now) {
		return "", Token{}, fmt.Errorf("expiry %s is in the past (now %s)", expiresAt.UTC().Format(time.RFC3339), now.Format(time.RFC3339))
	}
	var secret [secretBytes]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return "", Token{}, fmt.Errorf("random secret: %w", err)
	}
	rec := &record{
		Token: Token{
			Customer:  customer,
			CreatedAt: now.Truncate(time.Second),
			Note:      note,
		},
		hash: sha256.Sum256(secret[:]),
	}
	if !expiresAt.IsZero() {
		rec.ExpiresAt = expiresAt.UTC()
	}
	err := s.update(func(f *snapshot) error {
		for {
			id, err := newID()
			if err != nil {
				return err
			}
			// 50 random bits make a clash all but impossible; it would
			// still be a wrong answer from Verify, so rule it out.
			if f.byID[id] == nil {
				rec.ID = id
				break
			}
		}
		f.order = append(f.order, rec)
		return nil
	})
	if err != nil {
		return "", Token{}, err
	}
	return Prefix + rec.ID + "_" + secretEncoding.EncodeToString(secret[:]), rec.Token, nil
}

// List describes every token in the file, in creation order. It reads the
// file afresh.
func (s *Store) List() ([]Token, error) {
	snap := s.refresh(true)
	if snap.err != nil {
		return nil, snap.err
	}
	out := make([]Token, len(snap.order))
	for i, r := range snap.order {
		out[i] = r.Token
	}
	return out, nil
}

// Revoke marks the token id revoked: Verify refuses it from then on, in this
// process at once and in others within ReloadInterval. Revoking a revoked
// token changes nothing. An unknown id is an error wrapping ErrUnknown.
func (s *Store) Revoke(id string) error {
	return s.update(func(f *snapshot) error {
		i := slices.IndexFunc(f.order, func(r *record) bool { return r.ID == id })
		if i < 0 {
			return fmt.Errorf("%w: no token has id %q in %s (see `activitybi token list`)", ErrUnknown, id, s.path)
		}
		if !f.order[i].RevokedAt.IsZero() {
			return errNoChange
		}
		// Records are shared with published snapshots: copy, don't modify.
		r := *f.order[i]
		r.RevokedAt = time.Now().UTC().Truncate(time.Second)
		f.order[i] = &r
		return nil
	})
}

// Verify returns the token that token (the whole abi_… string) names if it
// is valid at now. It refuses with an error wrapping ErrMalformed,
// ErrUnknown, ErrRevoked or ErrExpired; for the last two the Token is
// returned as well, so the caller can log which one was refused. Any other
// error means the token file is unreadable.
//
// It costs well under a microsecond and allocates nothing when it accepts
// (BenchmarkVerify): a base64 decode, one SHA-256 of 32 bytes and a map
// lookup; the file is stat'ed at most every ReloadInterval, and for an id
// it does not know at most every unknownRecheckInterval besides.
func (s *Store) Verify(token string, now time.Time) (Token, error) {
	snap := s.refresh(false)
	if snap.err != nil {
		return Token{}, snap.err
	}
	id, secret, ok := parse(token)
	if !ok {
		return Token{}, ErrMalformed
	}
	r := snap.byID[id]
	if r == nil {
		// Only an unknown id looks again: a known one (revoked, or with a
		// wrong secret) waits for the next reload like any other change.
		if snap = s.recheck(); snap.err != nil {
			return Token{}, snap.err
		}
		if r = snap.byID[id]; r == nil {
			return Token{}, ErrUnknown
		}
	}
	// SHA-256 rather than a password hash (bcrypt, argon2): the secret is
	// 256 random bits, so there is no dictionary to try and brute force is
	// out of reach however fast the hash; a slow hash would only make every
	// request slow. The comparison is constant-time all the same.
	sum := sha256.Sum256(secret[:])
	if subtle.ConstantTimeCompare(sum[:], r.hash[:]) != 1 {
		return Token{}, ErrUnknown
	}
	switch r.State(now) {
	case StateRevoked:
		return r.Token, fmt.Errorf("%w: token %s (customer %q) was revoked at %s", ErrRevoked, r.ID, r.Customer, r.RevokedAt.Format(time.RFC3339))
	case StateExpired:
		return r.Token, fmt.Errorf("%w: token %s (customer %q) expired at %s", ErrExpired, r.ID, r.Customer, r.ExpiresAt.Format(time.RFC3339))
	}
	return r.Token, nil
}

// TokenID returns the id of a token of the form abi_<id>_<secret> (the
// whole form is checked, the secret's encoding included), and false for
// anything else. The id is not secret: it may go in a path, a log line or
// an error; the token itself may not. It says nothing about whether the
// token is valid: only Verify does.
func TokenID(token string) (string, bool) {
	id, _, ok := parse(token)
	return id, ok
}

// ValidTokenID reports whether id has the form of a token's id (IDLen
// characters of lower-case base32).
func ValidTokenID(id string) bool { return validID(id) }

// parse splits a token into its id and decoded secret.
func parse(token string) (id string, secret [secretBytes]byte, ok bool) {
	if len(token) != tokenLen || !strings.HasPrefix(token, Prefix) || token[len(Prefix)+idLen] != '_' {
		return "", secret, false
	}
	id = token[len(Prefix) : len(Prefix)+idLen]
	if !validID(id) {
		return "", secret, false
	}
	var enc [secretLen]byte
	copy(enc[:], token[len(Prefix)+idLen+1:])
	n, err := secretEncoding.Decode(secret[:], enc[:])
	if err != nil || n != secretBytes {
		return "", secret, false
	}
	return id, secret, true
}

func validID(id string) bool {
	if len(id) != idLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if strings.IndexByte(idAlphabet, id[i]) < 0 {
			return false
		}
	}
	return true
}

func newID() (string, error) {
	var b [idLen]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random id: %w", err)
	}
	for i := range b {
		// 256 is a multiple of 32, so the low 5 bits are uniform.
		b[i] = idAlphabet[b[i]&31]
	}
	return string(b[:]), nil
}

// checkString applies the event string rules (event.MaxStringLen
// characters, valid UTF-8, no control characters) to a customer or note:
// both end up in the same places as event strings (the customer column, a
// terminal table). A new value (Create) must not hold C1 controls either
// (U+0080 to U+009F: token list prints both to a terminal, where U+009B
// is CSI, and the customer is every event's, which refuses them); one read
// from the file is held to the rules it was written under, so that a file
// an earlier version wrote still reads (a file that cannot be read
// refuses every token).
func checkString(field, s string, required, newValue bool) error {
	var msg string
	switch {
	case s == "":
		if required {
			msg = "is required"
		}
	case !utf8.ValidString(s):
		msg = "is not valid UTF-8"
	case utf8.RuneCountInString(s) > event.MaxStringLen:
		msg = fmt.Sprintf("is %d characters; the limit is %d", utf8.RuneCountInString(s), event.MaxStringLen)
	case strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f || newValue && event.IsC1(r) }):
		msg = "contains control characters"
	}
	if msg == "" {
		return nil
	}
	return event.FieldError{Field: field, Msg: msg}
}

// refresh returns the current snapshot, first reloading the file if it
// changed. Without force it checks at most every ReloadInterval and never
// waits for another goroutine's check.
func (s *Store) refresh(force bool) *snapshot {
	now := s.now()
	if !force {
		last := s.checked.Load()
		if now-last < int64(ReloadInterval) || !s.checked.CompareAndSwap(last, now) {
			return s.snap.Load()
		}
	} else {
		s.checked.Store(now)
	}
	return s.check()
}

// recheck is refresh out of turn, for an id Verify does not know: it checks
// at most every unknownRecheckInterval and never waits for another
// goroutine's check.
func (s *Store) recheck() *snapshot {
	now := s.now()
	last := s.rechecked.Load()
	if now-last < int64(unknownRecheckInterval) || !s.rechecked.CompareAndSwap(last, now) {
		return s.snap.Load()
	}
	return s.check()
}

func (s *Store) now() int64 {
	if s.clock != nil {
		return int64(s.clock())
	}
	return int64(time.Since(s.epoch))
}

// check stats the file and reloads it if it changed.
func (s *Store) check() *snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.onCheck != nil {
		s.onCheck()
	}
	cur := s.snap.Load()
	fi, err := os.Stat(s.path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		// Unstat-able (permissions, say): fail closed until it is fixed.
		next := &snapshot{err: fmt.Errorf("token file %s: %w", s.path, err)}
		s.snap.Store(next)
		return next
	}
	if cur.err == nil {
		absent := err != nil
		if absent && cur.fi == nil || !absent && unchanged(cur.fi, fi) {
			return cur
		}
	}
	next := readSnapshot(s.path)
	s.snap.Store(next)
	return next
}

// unchanged reports whether b is the file a was read from, as it was then.
// Every write replaces the file by rename (a new inode) and makes it longer
// (tokens are only ever added or gain a revoked_at), so even when the inode
// number is recycled and the coarse mtime has not moved, the size has.
func unchanged(a, b os.FileInfo) bool {
	return a != nil && b != nil && os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}
