package spool

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestMultiProcessAppend: several processes (and this one) append to one
// directory at once, rotating often; every record comes back exactly once,
// in order per writer, with no corruption.
func TestMultiProcessAppend(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const children, perChild = 4, 1500
	errs := make(chan error, children)
	for c := 1; c <= children; c++ {
		cmd := helperCmd(t, "append", dir, fmt.Sprintf("%d:%d:%d", c, perChild, c))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { errs <- cmd.Wait() }()
	}
	// This process appends too, with its own writer.
	w, _ := setup(t, Options{Dir: dir, SegmentMaxBytes: 8 << 10, MaxPending: 1 << 30})
	for i := 0; i < perChild; i++ {
		if err := w.Append("event", testPayload(0, i, i%50)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for c := 0; c < children; c++ {
		if err := <-errs; err != nil {
			t.Fatalf("child: %v", err)
		}
	}
	segs, err := ListSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range segs {
		if !s.Closed {
			t.Errorf("segment %s still open after every writer closed", s.ID)
		}
	}
	recs, corrupt := readAll(t, dir)
	if len(corrupt) > 0 {
		t.Fatalf("%d corrupt records, first %+v", len(corrupt), corrupt[0])
	}
	if len(recs) != (children+1)*perChild {
		t.Fatalf("%d records, want %d", len(recs), (children+1)*perChild)
	}
	next := make([]int, children+1)
	for _, r := range recs {
		if r.I != next[r.C] {
			t.Fatalf("writer %d: record %d where %d was due", r.C, r.I, next[r.C])
		}
		next[r.C]++
	}
	t.Logf("%d segments", len(segs))
}

// TestCrashKill9: a child appends in a loop and reports every acknowledged
// record; it is killed with SIGKILL at a random moment, several times. After
// recovery every acknowledged record is present exactly once, and what is
// present is a gap-free prefix of what each child wrote.
func TestCrashKill9(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const rounds = 6
	acked := make([]int, rounds) // per child: highest acknowledged index, -1 for none
	for c := 0; c < rounds; c++ {
		dur := []string{"default", "sync"}[c%2]
		cmd := helperCmd(t, "crash", dir, fmt.Sprintf("%d:%s", c, dur))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		acked[c] = -1
		sc := bufio.NewScanner(stdout)
		var kill *time.Timer
		for sc.Scan() {
			i, err := strconv.Atoi(sc.Text())
			if err != nil {
				t.Fatalf("child %d wrote %q", c, sc.Text())
			}
			if i != acked[c]+1 {
				t.Fatalf("child %d acknowledged %d after %d", c, i, acked[c])
			}
			acked[c] = i
			if kill == nil {
				// Appending has begun: kill at a random moment of it, and
				// keep reading what it acknowledged before it died.
				kill = time.AfterFunc(time.Duration(5+rand.IntN(80))*time.Millisecond, func() {
					cmd.Process.Signal(syscall.SIGKILL)
				})
			}
		}
		killed := kill != nil && !kill.Stop()
		if err := cmd.Wait(); err == nil || !killed {
			t.Fatalf("child %d: exited by itself (%v) before it was killed", c, err)
		}
		if acked[c] < 0 {
			t.Fatalf("child %d acknowledged nothing", c)
		}
	}
	rep, err := Recover(dir, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	recs, corrupt := readAll(t, dir)
	if len(corrupt) > 0 {
		t.Fatalf("corrupt records after crashes: %+v", corrupt)
	}
	next := make([]int, rounds)
	for _, r := range recs {
		if r.I != next[r.C] {
			t.Fatalf("child %d: record %d where %d was due (duplicate or gap)", r.C, r.I, next[r.C])
		}
		next[r.C]++
	}
	for c := range rounds {
		if next[c] <= acked[c] {
			t.Errorf("child %d: %d records survive, but %d were acknowledged", c, next[c], acked[c]+1)
		}
		t.Logf("child %d: acknowledged %d, present %d", c, acked[c]+1, next[c])
	}
	segs, _ := ListSegments(dir)
	for _, s := range segs {
		if !s.Closed {
			t.Errorf("segment %s still open after recovery", s.ID)
		}
	}
	t.Logf("recovery: %d segments recovered, %d torn bytes", rep.Recovered, rep.TornBytes)
}
