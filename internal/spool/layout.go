package spool

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/activitybi/activitybi/internal/fsutil"
)

// On-disk names, permissions and intervals. docs/spool-format.md describes
// how they fit together.
const (
	// segmentsDirName holds every segment of a spool directory.
	segmentsDirName = "segments"
	// openExt marks a segment a writer may still append to (it holds a flock
	// on it while it does); closedExt marks one that will never grow again.
	openExt   = ".open"
	closedExt = ".seg"
	// tmpExt marks a segment being created: created, locked, then renamed to
	// openExt, so no other process ever sees an unlocked fresh .open file.
	tmpExt = ".tmp"
	// committedFile is the uploader's published commit state.
	committedFile = "committed.json"
	// committedTmpPattern names the temporary file PublishCommitted renames.
	committedTmpPattern = "committed-*.tmp"

	dirPerm  os.FileMode = 0o700 // spool directories: private to the user
	filePerm os.FileMode = 0o600 // segments and state files: private to the user

	// DefaultSegmentMaxBytes and DefaultSegmentMaxAge bound a segment
	// (design: rotation at 16 MiB or 60 s).
	DefaultSegmentMaxBytes int64 = 16 << 20
	DefaultSegmentMaxAge         = 60 * time.Second
	// DefaultFsyncInterval is the background fsync period in default
	// durability: the most a power loss may lose.
	DefaultFsyncInterval = 100 * time.Millisecond
	// DefaultMaxPending is the backpressure limit in records not yet in the
	// warehouse (design: 100,000 events).
	DefaultMaxPending = 100000

	// pendingRefreshInterval is how often a writer re-reads the directory to
	// learn what other writers appended and what the uploader committed.
	pendingRefreshInterval = 100 * time.Millisecond
	// blockedRefreshInterval bounds how often an append that would hit the
	// limit forces a refresh, so a storm of rejected appends stays cheap.
	blockedRefreshInterval = time.Millisecond
	// staleTmpAge is how old a leftover .tmp segment or committed tmp file
	// must be (and unlocked) before recovery removes it: its creator died
	// between creating and renaming it.
	staleTmpAge = time.Minute
	// seqDigits is the width of the per-writer segment sequence number.
	seqDigits = 6
)

func segmentsDir(dir string) string { return filepath.Join(dir, segmentsDirName) }

// splitSegmentName returns the id and extension of a segment file name, or
// ok=false for names that are not segments.
func splitSegmentName(name string) (id, ext string, ok bool) {
	ext = filepath.Ext(name)
	switch ext {
	case openExt, closedExt, tmpExt:
	default:
		return "", "", false
	}
	id = strings.TrimSuffix(name, ext)
	if validID(id) != nil {
		return "", "", false
	}
	return id, ext, true
}

// validID checks a segment id: <ULID>-<6 digits>, which also keeps ids free
// of path separators.
func validID(id string) error {
	const ulidLen = 26
	if len(id) != ulidLen+1+seqDigits || id[ulidLen] != '-' {
		return fmt.Errorf("invalid segment id %q", id)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		digit := c >= '0' && c <= '9'
		if i < ulidLen && !digit && !(c >= 'A' && c <= 'Z') || i > ulidLen && !digit {
			return fmt.Errorf("invalid segment id %q", id)
		}
	}
	return nil
}

// syncDir fsyncs a directory so that creations, renames and removals in it
// survive a power loss.
func syncDir(dir string) error {
	if err := fsutil.SyncDir(dir); err != nil {
		return fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	return nil
}

// mkdirDurable creates dir and its missing parents with dirPerm and fsyncs
// the parent of every directory it created, so a fresh spool directory
// survives a power loss along with the first segment in it.
func mkdirDurable(dir string) error {
	dir = filepath.Clean(dir)
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	var created []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil || filepath.Dir(d) == d {
			break
		}
		created = append(created, d)
	}
	if err := os.MkdirAll(dir, dirPerm); err != nil {
		return err
	}
	for _, d := range created {
		if err := syncDir(filepath.Dir(d)); err != nil {
			return err
		}
	}
	return nil
}

func isNotExist(err error) bool { return errors.Is(err, os.ErrNotExist) }
