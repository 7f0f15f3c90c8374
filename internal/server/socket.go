package server

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
)

// SocketFile is the core's Unix socket in the data directory.
const SocketFile = "core.sock"

// maxSocketPath is the longest path a Unix socket address may have
// (sun_path is 104 bytes on macOS, 108 on Linux, including the NUL).
const maxSocketPath = 103

// SocketPath is where the core for dataDir listens: core.sock in the data
// directory, or, when that path is too long for a socket address, a file
// named by the data directory's hash in a per-user directory under the
// runtime (or temporary) directory.
func SocketPath(dataDir string) string {
	p := filepath.Join(dataDir, SocketFile)
	if len(p) <= maxSocketPath {
		return p
	}
	base := os.Getenv("XDG_RUNTIME_DIR")
	if base == "" {
		base = os.TempDir()
	}
	h := sha256.Sum256([]byte(dataDir))
	return filepath.Join(base, "activitybi-"+strconv.Itoa(os.Getuid()), hex.EncodeToString(h[:8])+".sock")
}

// listenSocket listens on path, readable and writable only by this user.
// The caller holds the core lock, so a socket file left there belongs to a
// core that died and is removed.
func listenSocket(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), dirPerm); err != nil {
		return nil, err
	}
	if err := checkPrivateDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale socket: %w", err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on socket %s: %w", path, err)
	}
	if err := os.Chmod(path, filePerm); err != nil {
		ln.Close()
		return nil, err
	}
	return &peerListener{Listener: ln}, nil
}

// peerListener refuses connections from other users where the OS tells who
// the peer is (Linux SO_PEERCRED); the file mode is the boundary elsewhere.
type peerListener struct{ net.Listener }

func (l *peerListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if ok := samePeer(c); ok {
			return c, nil
		}
		c.Close()
	}
}
