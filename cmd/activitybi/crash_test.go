package main

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/activitybi/activitybi/internal/event"
	"github.com/activitybi/activitybi/internal/spool"
	"github.com/activitybi/activitybi/internal/upload"
)

// helperEnv makes the test binary act as a spool writer child process.
const helperEnv = "ACTIVITYBI_TEST_HELPER"

// helperMain appends events as fast as it can and prints the index of each
// one the spool acknowledged, until it is killed.
func helperMain() int {
	dir, prefix := os.Getenv("HELPER_SPOOL"), os.Getenv("HELPER_PREFIX")
	w, err := spool.Open(spool.Options{Dir: dir})
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper open:", err)
		return 2
	}
	out := os.Stdout
	for i := 0; ; i++ {
		ev, err := event.Normalize(event.Input{
			ActivityID: prefix + "-" + strconv.Itoa(i),
			Activity:   "called_tool",
			Features:   []byte(`{"tool":"bash","i":` + strconv.Itoa(i) + `}`),
		}, event.Defaults{Customer: "crash", Source: event.SourceAPI})
		if err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			return 2
		}
		p, _ := event.Marshal(&ev)
		if err := w.Append(upload.KindEvent, p); err != nil {
			fmt.Fprintln(os.Stderr, "helper append:", err)
			time.Sleep(10 * time.Millisecond)
			i--
			continue
		}
		// The acknowledgement is what we promise never to lose.
		out.WriteString(strconv.Itoa(i) + "\n")
	}
}

// TestCrashKill9 kills spool writers (and sometimes the core) with SIGKILL
// at random moments, many times; after restart and drain every acknowledged
// event is in the warehouse exactly once.
func TestCrashKill9(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rounds := 12
	if testing.Short() {
		rounds = 4
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	c := e.startCore()
	acked := map[string]int{} // prefix -> highest acknowledged index, -1 for none
	for r := 0; r < rounds; r++ {
		prefix := fmt.Sprintf("r%02d", r)
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), helperEnv+"=writer", "HELPER_SPOOL="+filepath.Join(e.dataDir, "spool"), "HELPER_PREFIX="+prefix)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var last atomic.Int64
		last.Store(-1)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				if n, err := strconv.Atoi(sc.Text()); err == nil {
					last.Store(int64(n))
				}
			}
		}()
		// Wait until the writer is appending, then kill it at a random moment.
		for start := time.Now(); last.Load() < 0 && time.Since(start) < 30*time.Second; {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
		if r%3 == 1 {
			// Kill the core too, mid-upload, and start a new one.
			c.kill()
			cmd.Process.Signal(syscall.SIGKILL)
			c = e.startCore()
		} else {
			cmd.Process.Signal(syscall.SIGKILL)
		}
		cmd.Wait()
		wg.Wait()
		acked[prefix] = int(last.Load())
		t.Logf("round %d: %d events acknowledged before SIGKILL", r, last.Load()+1)
	}
	c.stop(t)
	c = e.startCore()
	defer c.stop(t)

	total := 0
	for _, last := range acked {
		total += last + 1
	}
	// Wait until every acknowledged event is there; unacknowledged
	// in-flight ones (at most one per writer) may be there as well.
	deadline := time.Now().Add(60 * time.Second)
	for {
		n := e.count("SELECT count(*) FROM claude_stream WHERE customer = 'crash'")
		if n >= total {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d acknowledged events arrived\n%s", n, total, c.log())
		}
		time.Sleep(100 * time.Millisecond)
	}
	out := e.mustRun(nil, "sql", "--format", "csv", "--max-rows", "10000000", "SELECT activity_id FROM claude_stream WHERE customer = 'crash'")
	seen := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		seen[line]++
	}
	lost, dup, unexpected := 0, 0, 0
	for prefix, last := range acked {
		for i := 0; i <= last; i++ {
			if seen[prefix+"-"+strconv.Itoa(i)] == 0 {
				lost++
			}
		}
	}
	for id, n := range seen {
		// The primary key (customer, activity_id) makes this 0 by
		// construction; it guards against that key ever being changed.
		// Exactly-once delivery itself shows in lost == 0 with no
		// unexpected rows, and in the uploader tests' duplicate counters.
		if n > 1 {
			dup++
		}
		prefix, idx, ok := strings.Cut(id, "-")
		i, err := strconv.Atoi(idx)
		last, known := acked[prefix]
		// i == last+1 is the record in flight at the kill: written, not acknowledged.
		if !ok || err != nil || !known || i > last+1 {
			unexpected++
		}
	}
	t.Logf("%d rounds, %d acknowledged, %d rows: lost %d, duplicated %d, unexpected %d", rounds, total, len(seen), lost, dup, unexpected)
	if lost != 0 || dup != 0 || unexpected != 0 {
		t.Fatalf("lost %d, duplicated %d, unexpected %d", lost, dup, unexpected)
	}
	// Occurrence columns stayed consistent through the crashes.
	if got := e.count(`SELECT count(*) FROM (SELECT customer, activity, count(*) AS n, max(_activity_occurrence) AS m,
		count(DISTINCT _activity_occurrence) AS d FROM claude_stream GROUP BY ALL) WHERE n <> m OR n <> d`); got != 0 {
		t.Fatalf("%d partitions with inconsistent _activity_occurrence", got)
	}
	if got := e.count("SELECT count(*) FROM upload_quarantine"); got != 0 {
		t.Fatalf("%d records quarantined; a torn tail must be truncated, not quarantined", got)
	}
}
