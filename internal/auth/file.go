package auth

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/activitybi/activitybi/internal/fsutil"
)

// Files in the data directory.
const (
	// TokensFile holds the tokens (hashes only); 0600 all the same, since
	// it also says which customers exist.
	TokensFile = "tokens.json"
	// LockFile is flock'ed by whoever changes TokensFile, so concurrent
	// writers (two CLI invocations, the CLI and a core) never lose an update.
	// Readers do not take it: the file is replaced atomically.
	LockFile = "tokens.lock"
	// fileVersion is the format this code reads and writes.
	fileVersion = 1
	// hashPrefix names the hash function in the file, so it can change.
	hashPrefix = "sha256:"
	filePerm   = 0o600
	dirPerm    = 0o700
)

// fileDoc is tokens.json.
type fileDoc struct {
	Version int         `json:"version"`
	Tokens  []fileToken `json:"tokens"`
}

type fileToken struct {
	ID        string    `json:"id"`
	Customer  string    `json:"customer"`
	Hash      string    `json:"hash"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
	Note      string    `json:"note,omitempty"`
}

// errNoChange tells update that fn found nothing to change.
var errNoChange = errors.New("no change")

// update applies fn to the current file under the write lock and writes the
// result atomically. fn gets a private copy of the token list (the records
// themselves are shared and must be replaced, not modified) and may return
// errNoChange to skip the write.
func (s *Store) update(fn func(*snapshot) error) error {
	if err := os.MkdirAll(s.dir, dirPerm); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	unlock, err := lock(filepath.Join(s.dir, LockFile))
	if err != nil {
		return err
	}
	defer unlock()
	// Read afresh: the cached snapshot may be up to ReloadInterval old.
	cur := readSnapshot(s.path)
	if cur.err != nil {
		return cur.err
	}
	next := &snapshot{byID: cur.byID, order: slices.Clone(cur.order)}
	switch err := fn(next); {
	case errors.Is(err, errNoChange):
		next = cur
	case err != nil:
		return err
	default:
		b, err := encode(next.order)
		if err != nil {
			return err
		}
		if err := fsutil.WriteFileAtomic(s.path, b, filePerm, ""); err != nil {
			return fmt.Errorf("write %s: %w", s.path, err)
		}
		// Still under the lock, so this is the file just written.
		if next.fi, err = os.Stat(s.path); err != nil {
			return err
		}
		next.byID = index(next.order)
	}
	s.mu.Lock()
	s.snap.Store(next)
	s.mu.Unlock()
	return nil
}

// readSnapshot reads and checks path. A missing file is an empty snapshot;
// any other problem is the snapshot's err, naming the file.
func readSnapshot(path string) *snapshot {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return &snapshot{}
	}
	if err != nil {
		return &snapshot{err: fmt.Errorf("token file: %w", err)}
	}
	defer f.Close()
	// Stat the open file, not the path: fi must describe the bytes read
	// even if a writer renames a new version into place meanwhile.
	fi, err := f.Stat()
	if err != nil {
		return &snapshot{err: fmt.Errorf("token file %s: %w", path, err)}
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return &snapshot{err: fmt.Errorf("token file %s: %w", path, err)}
	}
	order, err := decode(b)
	if err != nil {
		return &snapshot{err: fmt.Errorf("token file %s: %w (activitybi replaces it atomically, so it was changed by other means: restore it, or move it aside and create new tokens)", path, err)}
	}
	return &snapshot{byID: index(order), order: order, fi: fi}
}

func index(order []*record) map[string]*record {
	m := make(map[string]*record, len(order))
	for _, r := range order {
		m[r.ID] = r
	}
	return m
}

func decode(b []byte) ([]*record, error) {
	var doc fileDoc
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("not valid JSON: %w", err)
	}
	// Not dec.More(): it is false before a closing bracket, so `{...}]`
	// would pass.
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("not valid JSON: data after the top-level object")
	}
	if doc.Version != fileVersion {
		return nil, fmt.Errorf("version %d is not supported; this activitybi reads version %d (was it written by a newer release?)", doc.Version, fileVersion)
	}
	order := make([]*record, 0, len(doc.Tokens))
	seen := make(map[string]bool, len(doc.Tokens))
	for i, t := range doc.Tokens {
		r, err := t.record()
		if err != nil {
			return nil, fmt.Errorf("token %d (id %q): %w", i+1, t.ID, err)
		}
		if seen[r.ID] {
			return nil, fmt.Errorf("token %d: id %q appears twice", i+1, t.ID)
		}
		seen[r.ID] = true
		order = append(order, r)
	}
	return order, nil
}

func (t fileToken) record() (*record, error) {
	if !validID(t.ID) {
		return nil, fmt.Errorf("id is not %d characters of [a-z2-7]", idLen)
	}
	if err := checkString("customer", t.Customer, true, false); err != nil {
		return nil, err
	}
	if err := checkString("note", t.Note, false, false); err != nil {
		return nil, err
	}
	if t.CreatedAt.IsZero() {
		return nil, errors.New("created_at is missing")
	}
	r := &record{Token: Token{ID: t.ID, Customer: t.Customer, CreatedAt: t.CreatedAt.UTC(), Note: t.Note}}
	if !t.ExpiresAt.IsZero() {
		r.ExpiresAt = t.ExpiresAt.UTC()
	}
	if !t.RevokedAt.IsZero() {
		r.RevokedAt = t.RevokedAt.UTC()
	}
	h, ok := strings.CutPrefix(t.Hash, hashPrefix)
	if n, err := hex.Decode(r.hash[:], []byte(h)); !ok || err != nil || n != len(r.hash) || len(h) != hex.EncodedLen(len(r.hash)) {
		return nil, fmt.Errorf("hash is not %s followed by %d hex digits", hashPrefix, hex.EncodedLen(len(r.hash)))
	}
	return r, nil
}

func encode(order []*record) ([]byte, error) {
	doc := fileDoc{Version: fileVersion, Tokens: make([]fileToken, len(order))}
	for i, r := range order {
		doc.Tokens[i] = fileToken{
			ID:        r.ID,
			Customer:  r.Customer,
			Hash:      hashPrefix + hex.EncodeToString(r.hash[:]),
			CreatedAt: r.CreatedAt,
			ExpiresAt: r.ExpiresAt,
			RevokedAt: r.RevokedAt,
			Note:      r.Note,
		}
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
