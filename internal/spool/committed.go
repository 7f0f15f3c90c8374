package spool

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/activitybi/activitybi/internal/fsutil"
)

// Committed is how far the uploader has committed one segment to the
// warehouse: Offset is the byte offset just after the last committed line and
// Records the number of lines before Offset, corrupt (quarantined) lines
// included — writers compute pending as lines in the segment minus Records.
type Committed struct {
	Offset  int64 `json:"offset"`
	Records int64 `json:"records"`
}

// committedState is the content of committed.json.
type committedState struct {
	Version  int                  `json:"version"`
	Segments map[string]Committed `json:"segments"`
}

const committedVersion = 1

// PublishCommitted atomically replaces the spool's committed state (write a
// temporary file, fsync it, rename it over committed.json, fsync the
// directory). c should hold every segment that still exists and has
// committed records; entries for deleted segments are ignored by readers.
func PublishCommitted(dir string, c map[string]Committed) error {
	for id, v := range c {
		if err := validID(id); err != nil {
			return fmt.Errorf("publish committed: %w", err)
		}
		if v.Offset < 0 || v.Records < 0 {
			return fmt.Errorf("publish committed: negative offset or records for %s", id)
		}
	}
	if c == nil {
		c = map[string]Committed{}
	}
	data, err := json.Marshal(committedState{Version: committedVersion, Segments: c})
	if err != nil {
		return fmt.Errorf("publish committed: %w", err)
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(dir, committedFile), data, filePerm, committedTmpPattern); err != nil {
		return fmt.Errorf("publish committed: %w", err)
	}
	return nil
}

// ReadCommitted returns the state last published with PublishCommitted; an
// empty map when nothing was published yet.
func ReadCommitted(dir string) (map[string]Committed, error) {
	data, err := os.ReadFile(filepath.Join(dir, committedFile))
	if err != nil {
		if isNotExist(err) {
			return map[string]Committed{}, nil
		}
		return nil, fmt.Errorf("read committed: %w", err)
	}
	return parseCommitted(data)
}

func parseCommitted(data []byte) (map[string]Committed, error) {
	var st committedState
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("read committed: %s: %w", committedFile, err)
	}
	if st.Version != committedVersion {
		return nil, fmt.Errorf("read committed: %s has version %d, want %d", committedFile, st.Version, committedVersion)
	}
	if st.Segments == nil {
		st.Segments = map[string]Committed{}
	}
	return st.Segments, nil
}

// DeleteSegment removes a closed segment whose every byte is committed
// according to committed.json (so publish before deleting), then fsyncs the
// directory. Open segments are never deleted.
func DeleteSegment(dir string, id string) error {
	if err := validID(id); err != nil {
		return fmt.Errorf("delete segment: %w", err)
	}
	path := segmentPath(dir, id, true)
	fi, err := os.Stat(path)
	if err != nil {
		if _, oerr := os.Stat(segmentPath(dir, id, false)); oerr == nil {
			return fmt.Errorf("delete segment %s: segment is still open", id)
		}
		return fmt.Errorf("delete segment: %w", err)
	}
	c, err := ReadCommitted(dir)
	if err != nil {
		return fmt.Errorf("delete segment %s: %w", id, err)
	}
	if got := c[id].Offset; got < fi.Size() {
		return fmt.Errorf("delete segment %s: only %d of %d bytes are committed in %s; PublishCommitted first",
			id, got, fi.Size(), committedFile)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("delete segment: %w", err)
	}
	if err := syncDir(segmentsDir(dir)); err != nil {
		return fmt.Errorf("delete segment: %w", err)
	}
	return nil
}
