//go:build unix

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The warehouse file is its user's only, also where warehouse.path puts it
// outside the 0700 data folder, and so is every file in the data folder,
// whatever the shell's umask (the test's is usually 022, which gave 0644).
func TestFilesAreOwnerOnly(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	shared := filepath.Join(t.TempDir(), "shared")
	if err := os.Mkdir(shared, 0o755); err != nil {
		t.Fatal(err)
	}
	wh := filepath.Join(shared, "w.duckdb")
	e.mustRun(nil, "log", "used_tool", "--feature", "tool=Read")
	e.mustRun(nil, "migrate", "--warehouse-path", wh)
	if out := e.mustRun(nil, "sql", "--warehouse-path", wh, "--format", "csv", "SELECT 1 AS one"); !strings.Contains(out, "one") {
		t.Fatalf("sql: %q", out)
	}
	files := []string{wh}
	err := filepath.WalkDir(e.dataDir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v", f, st.Mode().Perm())
		}
	}
}
