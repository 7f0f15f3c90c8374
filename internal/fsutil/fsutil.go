// Package fsutil holds the file-system steps every package must do the same
// way: replacing a file atomically and durably, and fsyncing a directory.
package fsutil

import (
	"os"
	"path/filepath"
	"runtime"
)

// WriteFileAtomic replaces path with data so that a reader sees the old
// content or the new, never a mix, and the new survives a crash once it
// returns: a temporary file in the same directory (named by tmpPattern, as
// os.CreateTemp takes it; "" = ".<name>.tmp-*"), written, given perm,
// fsynced, renamed over path, and the directory fsynced. On error the
// temporary file is removed and path is unchanged.
func WriteFileAtomic(path string, data []byte, perm os.FileMode, tmpPattern string) error {
	tmp, err := writeTemp(path, data, perm, tmpPattern)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return SyncDir(filepath.Dir(path))
}

// WriteFileNew creates path with data, whole or not at all, only if it does
// not exist: of several processes racing to make it, one does and the
// others get an error that errors.Is os.ErrExist (then read what the
// winner wrote; a reader never sees part of it). The temporary file is
// written and fsynced as by WriteFileAtomic, then hard-linked to path.
func WriteFileNew(path string, data []byte, perm os.FileMode) error {
	tmp, err := writeTemp(path, data, perm, "")
	if err != nil {
		return err
	}
	err = os.Link(tmp, path)
	os.Remove(tmp)
	if err != nil {
		return err
	}
	return SyncDir(filepath.Dir(path))
}

// writeTemp writes data to a new temporary file beside path (named by
// tmpPattern, "" = ".<name>.tmp-*"), with mode perm, fsynced, and returns
// its name; on error nothing is left behind.
func writeTemp(path string, data []byte, perm os.FileMode, tmpPattern string) (string, error) {
	if tmpPattern == "" {
		tmpPattern = "." + filepath.Base(path) + ".tmp-*"
	}
	f, err := os.CreateTemp(filepath.Dir(path), tmpPattern)
	if err != nil {
		return "", err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm) // CreateTemp makes 0600; the caller decides
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return "", err
	}
	return tmp, nil
}

// SyncDir fsyncs dir so that creations, renames and removals in it survive
// a power loss. Windows cannot fsync a directory and does not need to.
func SyncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
