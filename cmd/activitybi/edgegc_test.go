package main

import (
	"os"
	"runtime/debug"
	"testing"
)

// TestSetEdgeGC: an edge collects at edgeGCPercent unless GOGC is set.
func TestSetEdgeGC(t *testing.T) {
	if _, ok := os.LookupEnv("GOGC"); ok {
		t.Skip("GOGC is set in this environment; setEdgeGC leaves it")
	}
	prev := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(prev) })
	setEdgeGC()
	if got := debug.SetGCPercent(100); got != edgeGCPercent {
		t.Fatalf("GOGC after setEdgeGC: %d, want %d", got, edgeGCPercent)
	}
}
