package main

import (
	"crypto/sha256"
	"encoding/binary"
	"os"
	"strings"
	"testing"
	"unsafe"
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
	var inText, inLib, random, libRandom bool
	for _, line := range strings.Split(string(smaps), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 6 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":"):
			inText = f[1] == "r-xp" && f[5] == exe
			inLib = f[1] == "r-xp" && strings.Contains(f[5], "/libstdc++.so")
		case (inText || inLib) && len(f) > 0 && f[0] == "VmFlags:":
			if inText {
				random = strings.Contains(line, " rr")
			} else {
				libRandom = strings.Contains(line, " rr")
			}
			inText, inLib = false, false
		}
	}
	if !random {
		t.Errorf("the executable's text mapping is not MADV_RANDOM after the trim")
	}
	if !libRandom {
		t.Errorf("libstdc++'s text mapping (DuckDB's C++ runtime) was not trimmed")
	}
	t.Logf("RSS %.1f -> %.1f MB", float64(before)/1e6, float64(after)/1e6)
}

// TestTrimFontData: the fonts gonum/plot and go-latex parse at init are
// resident before the trim, none of their whole pages is after it, and
// their bytes read back the same.
func TestTrimFontData(t *testing.T) {
	sums := make([][32]byte, len(fontData))
	for i, b := range fontData {
		sums[i] = sha256.Sum256(b) // also faults every page in
	}
	if got := residentFontPages(t); got == 0 {
		t.Fatal("no font page resident before the trim: the test proves nothing")
	}
	dropped := trimFontData()
	if dropped == 0 {
		t.Fatal("trimFontData gave nothing back")
	}
	if got := residentFontPages(t); got != 0 {
		t.Errorf("%d font pages still resident after the trim", got)
	}
	for i, b := range fontData {
		if sha256.Sum256(b) != sums[i] {
			t.Fatalf("font %d reads back different bytes after the trim", i)
		}
	}
	t.Logf("gave back %.1f MB", float64(dropped)/1e6)
}

// residentFontPages counts the whole pages of fontData that are present.
func residentFontPages(t *testing.T) int {
	t.Helper()
	pm, err := os.Open("/proc/self/pagemap")
	if err != nil {
		t.Fatal(err)
	}
	defer pm.Close()
	ps := uintptr(os.Getpagesize())
	n := 0
	for _, b := range fontData {
		start := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
		for p := (start + ps - 1) &^ (ps - 1); p+ps <= start+uintptr(len(b)); p += ps {
			var e [8]byte
			if _, err := pm.ReadAt(e[:], int64(p/ps)*8); err != nil {
				t.Fatal(err)
			}
			if binary.LittleEndian.Uint64(e[:])&pagemapPresent != 0 {
				n++
			}
		}
	}
	return n
}
