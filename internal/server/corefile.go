package server

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/activitybi/activitybi/internal/fsutil"
)

// Files in the data directory that describe the running core.
const (
	// CoreInfoFile tells local clients where the core listens and the admin
	// token; 0600 so only this user can read it.
	CoreInfoFile = "core.json"
	// CoreLockFile is flock'ed by the running core: one core per data dir.
	CoreLockFile = "core.lock"
	filePerm     = 0o600
	dirPerm      = 0o700
)

// CoreInfo is the content of core.json.
type CoreInfo struct {
	PID       int       `json:"pid"`
	Addr      string    `json:"addr"`
	Token     string    `json:"token"`
	StartedAt time.Time `json:"started_at"`
	Version   string    `json:"version"`
	Socket    string    `json:"socket,omitempty"`
	StartedBy string    `json:"started_by,omitempty"`
}

// URL is the core's base URL.
func (c CoreInfo) URL() string { return "http://" + c.Addr }

// NewToken returns a random 256-bit token in hex.
func NewToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// WriteCoreInfo writes core.json atomically (tmp, fsync, rename).
func WriteCoreInfo(dataDir string, info CoreInfo) error {
	b, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(filepath.Join(dataDir, CoreInfoFile), b, filePerm, "")
}

// ReadCoreInfo reads core.json; os.ErrNotExist when no core has published one.
func ReadCoreInfo(dataDir string) (CoreInfo, error) {
	var info CoreInfo
	b, err := os.ReadFile(filepath.Join(dataDir, CoreInfoFile))
	if err != nil {
		return info, err
	}
	if err := json.Unmarshal(b, &info); err != nil {
		return info, fmt.Errorf("read %s: %w", CoreInfoFile, err)
	}
	return info, nil
}

// RemoveCoreInfo deletes core.json if it still names this process.
func RemoveCoreInfo(dataDir string) {
	if info, err := ReadCoreInfo(dataDir); err == nil && info.PID == os.Getpid() {
		os.Remove(filepath.Join(dataDir, CoreInfoFile))
	}
}

// errLocked means another process holds the lock.
var errLocked = errors.New("locked by another process")

// LockCore takes the data directory's core lock, or says which process
// holds it. The lock is released when the process exits, however it exits.
func LockCore(dataDir string) (unlock func(), err error) {
	if err := os.MkdirAll(dataDir, dirPerm); err != nil {
		return nil, err
	}
	path := filepath.Join(dataDir, CoreLockFile)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, filePerm)
	if err != nil {
		return nil, err
	}
	err = tryLock(f)
	// Probes (CoreRunning, an edge looking for a starting core) hold the
	// lock for an instant; do not mistake one for a running core.
	for i := 0; i < 5 && errors.Is(err, errLocked); i++ {
		time.Sleep(20 * time.Millisecond)
		err = tryLock(f)
	}
	if err != nil {
		b, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, errLocked) {
			pid := strings.TrimSpace(string(b))
			return nil, fmt.Errorf("another activitybi core is already running for %s (pid %s); stop it first or use another --data-dir", dataDir, pid)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() { f.Close() }, nil
}
