package main

import (
	"os"
	"strings"
	"testing"
)

// TestTrimExecutable: trimming gives back pages of this (test) binary and
// leaves its read-only mappings faulting one page at a time (MADV_RANDOM:
// "rr" in smaps' VmFlags).
func TestTrimExecutable(t *testing.T) {
	before, after := trimExecutable()
	if before == 0 || after >= before {
		t.Fatalf("RSS %d -> %d bytes: nothing given back", before, after)
	}
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	var inText, random bool
	for _, line := range strings.Split(string(smaps), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 6 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":"):
			inText = f[1] == "r-xp" && f[5] == exe
		case inText && len(f) > 0 && f[0] == "VmFlags:":
			random = strings.Contains(line, " rr")
			inText = false
		}
	}
	if !random {
		t.Errorf("the executable's text mapping is not MADV_RANDOM after the trim")
	}
	t.Logf("RSS %.1f -> %.1f MB", float64(before)/1e6, float64(after)/1e6)
}
