package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestServeNice: `serve --nice 7` runs every thread of the core at nice 7
// (DuckDB's threads, started after, included); an out-of-range value is
// refused at start.
func TestServeNice(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if _, errs, code := e.run(nil, "serve", "--nice", "20"); code == 0 || !strings.Contains(errs, "--nice must be between 0 and 19") {
		t.Fatalf("serve --nice 20: exit %d, %s", code, errs)
	}
	c := e.startCoreArgs([]string{"--nice", "7"})
	defer c.stop(t)
	dir := fmt.Sprintf("/proc/%d/task", c.cmd.Process.Pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) < 3 {
		t.Fatalf("%d threads", len(tasks))
	}
	for _, tk := range tasks {
		b, err := os.ReadFile(dir + "/" + tk.Name() + "/stat")
		if err != nil {
			continue // the thread ended
		}
		_, rest, _ := strings.Cut(string(b), ") ")
		f := strings.Fields(rest)
		if len(f) < 17 || f[16] != "7" {
			t.Errorf("thread %s: nice %v (stat %q)", tk.Name(), f[16:17], rest)
		}
	}
}
