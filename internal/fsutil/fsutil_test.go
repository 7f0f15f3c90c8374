package fsutil

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteFileAtomic(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	for _, content := range []string{"first\n", "second, longer\n", ""} {
		if err := WriteFileAtomic(path, []byte(content), 0o640, ""); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil || string(b) != content {
			t.Fatalf("read %q, %v; want %q", b, err, content)
		}
		fi, _ := os.Stat(path)
		if fi.Mode().Perm() != 0o640 {
			t.Fatalf("mode %v", fi.Mode())
		}
	}
	des, _ := os.ReadDir(dir)
	if len(des) != 1 {
		t.Fatalf("temporary files left: %v", des)
	}
	// A directory in the way: an error, no temporary file left.
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sub", "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(filepath.Join(dir, "sub"), []byte("x"), 0o600, "custom-*.tmp"); err == nil {
		t.Fatal("renaming over a non-empty directory must fail")
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "custom-*.tmp")); len(m) != 0 {
		t.Fatalf("temporary file left: %v", m)
	}
	if err := SyncDir(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("SyncDir of a missing directory must fail")
	}
}

// WriteFileNew makes the file once: of racing writers one wins, the others
// get os.ErrExist, and the file holds the winner's data whole; no
// temporary file is left.
func TestWriteFileNew(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "id")
	errs := make(chan error, 8)
	for i := range 8 {
		go func() { errs <- WriteFileNew(path, []byte(strings.Repeat(string(rune('a'+i)), 4096)), 0o600) }()
	}
	won := 0
	for range 8 {
		err := <-errs
		switch {
		case err == nil:
			won++
		case !errors.Is(err, os.ErrExist):
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if won != 1 || err != nil || len(b) != 4096 || strings.Count(string(b), string(b[0])) != 4096 {
		t.Fatalf("%d winners; file %d bytes, %v", won, len(b), err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("left in the folder: %v", ents)
	}
}
