package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/activitybi/activitybi/internal/auth"
	"github.com/activitybi/activitybi/internal/fsutil"
	"github.com/activitybi/activitybi/internal/spool"
	"github.com/activitybi/activitybi/internal/upload"
)

// The remote spools of a data directory, as the edges that ship them and
// `activitybi status` see them: <data>/remote/<URL key>-<token id>/ (one
// per server and token) and legacy <data>/remote/<URL key>/ (one per
// server, from versions before per-token spools; see remote.go).

// remoteIdentity is identity.json in a remote spool's directory: whose
// records the spool holds. It never holds a token's secret.
type remoteIdentity struct {
	// URL is the server the spool ships to, for a person reading the file.
	URL string `json:"url"`
	// TokenID is the id of the token the spool's records were logged with
	// ("" in a legacy spool: they were logged with any token).
	TokenID string `json:"token_id,omitempty"`
	// Customer is the customer the server said TokenID belongs to (GET
	// /v1/whoami); "" while no edge has heard it. In a legacy spool: the
	// customer of the edge that claimed it (ClaimedBy).
	Customer string `json:"customer,omitempty"`
	// Legacy marks a legacy spool claimed by the first edge that shipped
	// it after the upgrade; ClaimedBy is that edge's token id.
	Legacy    bool   `json:"legacy,omitempty"`
	ClaimedBy string `json:"claimed_by_token_id,omitempty"`
	// UpdatedAt is when the file was written.
	UpdatedAt time.Time `json:"updated_at"`
}

// readRemoteIdentity reads dir's identity.json; none is the zero value.
func readRemoteIdentity(dir string) (remoteIdentity, error) {
	var id remoteIdentity
	b, err := os.ReadFile(filepath.Join(dir, remoteIdentityName))
	if errors.Is(err, os.ErrNotExist) {
		return id, nil
	}
	if err != nil {
		return id, err
	}
	if err := json.Unmarshal(b, &id); err != nil {
		// Written atomically: not a torn write. Unknown, then: never
		// shipped under another token on its say-so.
		return remoteIdentity{}, fmt.Errorf("%s: %w", filepath.Join(dir, remoteIdentityName), err)
	}
	return id, nil
}

// writeRemoteIdentity replaces dir's identity.json (0600, atomically).
func writeRemoteIdentity(dir string, id remoteIdentity) error {
	id.UpdatedAt = time.Now().UTC().Truncate(time.Second)
	b, err := json.MarshalIndent(id, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(filepath.Join(dir, remoteIdentityName), append(b, '\n'), remoteFilePerm, "")
}

// remoteSpool is one remote spool directory and what it holds.
type remoteSpool struct {
	Dir     string `json:"dir"`
	URLKey  string `json:"-"`
	Legacy  bool   `json:"legacy,omitempty"`
	TokenID string `json:"token_id,omitempty"` // from the directory name
	// URL is the server, from identity.json or, in a legacy spool that has
	// none, offsets.json; "" when neither says.
	URL      string         `json:"url,omitempty"`
	Identity remoteIdentity `json:"-"`
	Customer string         `json:"customer,omitempty"` // Identity.Customer
	// Pending counts the records (complete lines) not yet shipped.
	Pending  int64 `json:"pending"`
	Segments int   `json:"segments"`
	// Live counts the open segments a writer holds now (an edge running);
	// an unreadable spool counts one, so that nothing is decided on a
	// guess.
	Live int `json:"-"`
	// Err is why the spool or its identity could not be read.
	Err string `json:"error,omitempty"`
}

// parseRemoteDirName splits a remote spool directory's name into its URL
// key and token id ("" for a legacy spool); ok is false for anything else.
func parseRemoteDirName(name string) (urlKey, tokenID string, ok bool) {
	key, id, hasID := strings.Cut(name, "-")
	if len(key) != remoteURLHashHex || strings.Trim(key, "0123456789abcdef") != "" {
		return "", "", false
	}
	if !hasID {
		return key, "", true
	}
	if !auth.ValidTokenID(id) {
		return "", "", false
	}
	return key, id, true
}

// listRemoteSpools lists the remote spools under dataDir, of the server
// with URL key urlKey only unless it is "", sorted by directory. With
// count, it counts their pending records too (see countPending).
func listRemoteSpools(dataDir, urlKey string, count bool) ([]remoteSpool, error) {
	root := filepath.Join(dataDir, remoteDirName)
	des, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []remoteSpool
	for _, de := range des {
		key, id, ok := parseRemoteDirName(de.Name())
		if !ok || !de.IsDir() || (urlKey != "" && key != urlKey) {
			continue
		}
		sp := readRemoteSpool(filepath.Join(root, de.Name()), key, id)
		if count {
			sp.countPending()
		}
		out = append(out, sp)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Dir < out[j].Dir })
	return out, nil
}

// readRemoteSpool reads a spool's identity (a few hundred bytes).
func readRemoteSpool(dir, key, tokenID string) remoteSpool {
	sp := remoteSpool{Dir: dir, URLKey: key, TokenID: tokenID, Legacy: tokenID == ""}
	id, err := readRemoteIdentity(dir)
	if err != nil {
		sp.Err = err.Error()
	}
	sp.Identity, sp.Customer, sp.URL = id, id.Customer, id.URL
	if sp.URL == "" {
		// offsets.json names the server it was shipped to.
		var f struct {
			URL string `json:"url"`
		}
		if b, err := os.ReadFile(filepath.Join(dir, upload.RemoteOffsetsFile)); err == nil && json.Unmarshal(b, &f) == nil {
			sp.URL = f.URL
		}
	}
	return sp
}

// countPending counts the spool's records not yet shipped and its live
// segments (spool.Stat: it reads only the part of each segment that is not
// shipped yet).
func (sp *remoteSpool) countPending() {
	rep, err := spool.Stat(filepath.Join(sp.Dir, remoteSpoolName))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		sp.Err = strings.TrimPrefix(sp.Err+"; "+err.Error(), "; ")
	}
	sp.Pending, sp.Segments, sp.Live = rep.Pending, len(rep.Segments), 0
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		sp.Live = 1
	}
	for _, sg := range rep.Segments {
		if !sg.Closed && !sg.Orphaned {
			sp.Live++
		}
	}
}

// recordIdentity writes the shipper's identity.json when it is missing or
// names another server or token (it never loses a customer recorded for
// this token). The shipper holds the spool's lock.
func (s *shipper) recordIdentity() {
	id, err := readRemoteIdentity(s.dir)
	if err == nil && id.URL == s.url && id.TokenID == s.tokenID {
		return
	}
	if err != nil || id.TokenID != s.tokenID {
		id = remoteIdentity{}
	}
	id.URL, id.TokenID = s.url, s.tokenID
	if err := writeRemoteIdentity(s.dir, id); err != nil {
		s.a.log.Warn("record the remote spool's token", "dir", s.dir, "err", err)
	}
}
