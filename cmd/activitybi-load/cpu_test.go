package main

import (
	"os"
	"testing"
	"time"
)

// procCPU reads this process's CPU time, which grows while it computes,
// and gives 0 for a process that does not exist.
func TestProcCPU(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	c := startCPU(0)
	u0, s0 := procCPU(os.Getpid())
	deadline := time.Now().Add(10 * time.Second)
	x := 0
	for time.Now().Before(deadline) {
		for i := range 1_000_000 {
			x += i
		}
		if u, s := procCPU(0); u+s >= u0+s0+20*time.Millisecond {
			break
		}
	}
	c.finish()
	if c.total() < 20*time.Millisecond {
		t.Fatalf("CPU time grew by %v while spinning (x=%d)", c.total(), x)
	}
	if u, s := procCPU(1 << 30); u != 0 || s != 0 {
		t.Errorf("a missing process: %v %v", u, s)
	}
}
