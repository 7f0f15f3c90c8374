// Command activitybi-load is the end-to-end load tool behind bench/: it
// drives a real `activitybi serve` process and real spool writers and prints
// percentiles, rates and memory. See bench/README.md for the commands.
//
//	activitybi-load lag    --bin ./activitybi --rate 10000 --duration 30s
//	activitybi-load upload --events 200000
//	activitybi-load mcp-stdio --server floor=/tmp/mcpfloor --tool noop
//	activitybi-load mcp-http --url http://127.0.0.1:8080/mcp --token T --sessions 1000 --rate 2000
//	activitybi-load events-http --url http://127.0.0.1:8080 --token T --batch 1000
//	activitybi-load get-context --bin ./activitybi --floor /tmp/mcpfloor
package main

import (
	"bufio"
	"cmp"
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/activitybi/activitybi/internal/event"
	"github.com/activitybi/activitybi/internal/server"
	"github.com/activitybi/activitybi/internal/spool"
	"github.com/activitybi/activitybi/internal/upload"
	"github.com/activitybi/activitybi/internal/warehouse/duckdb"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: activitybi-load lag|upload|append|mcp-stdio|mcp-http|events-http|get-context [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "lag":
		err = lag(os.Args[2:])
	case "upload":
		err = uploadBench(os.Args[2:])
	case "append":
		err = appendBench(os.Args[2:])
	case "mcp-stdio":
		err = runMode(mcpStdio, os.Args[2:])
	case "mcp-http":
		err = runMode(mcpHTTP, os.Args[2:])
	case "events-http":
		err = runMode(eventsHTTP, os.Args[2:])
	case "get-context":
		err = runMode(getContextBench, os.Args[2:])
	default:
		err = fmt.Errorf("unknown mode %q (lag, upload, append, mcp-stdio, mcp-http, events-http, get-context)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "activitybi-load:", err)
		os.Exit(1)
	}
}

func makeEvent(customer string, i int) []byte {
	ev, err := event.Normalize(event.Input{
		Activity: []string{"called_tool", "submitted_prompt", "completed_response"}[i%3],
		Features: []byte(`{"tool":"search","duration_ms":` + strconv.Itoa(i%2000) + `,"model":"claude-sonnet-4-5","input_tokens":` + strconv.Itoa(i%5000) + `}`),
	}, event.Defaults{Customer: customer, Source: event.SourceAPI})
	if err != nil {
		panic(err)
	}
	b, _ := event.Marshal(&ev)
	return b
}

// lag runs a core, appends at a fixed rate from several writers, and reports
// acknowledged->committed lag percentiles from the core's histogram, the
// append latency seen by writers, and the core's RSS.
func lag(args []string) error {
	fs := flag.NewFlagSet("lag", flag.ExitOnError)
	bin := fs.String("bin", "./activitybi", "activitybi binary")
	rate := fs.Int("rate", 10000, "events per second, in total")
	dur := fs.Duration("duration", 30*time.Second, "how long to send")
	writers := fs.Int("writers", 4, "spool writers (one segment each)")
	customers := fs.Int("customers", 100, "distinct customers")
	fs.Parse(args)

	dir, err := os.MkdirTemp("", "activitybi-load")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cmd := exec.Command(*bin, "serve", "--data-dir", dir, "--listen", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "HOME="+dir)
	logf, _ := os.Create(filepath.Join(dir, "core.log"))
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	info, err := waitCore(dir, cmd.Process.Pid)
	if err != nil {
		return err
	}
	before, err := scrapeHistogram(info, "activitybi_ingestion_lag_seconds")
	if err != nil {
		return err
	}

	var rssMax atomic.Int64
	var peak atomic.Pointer[procMem] // the core's memory when its RSS peaked
	stopRSS := make(chan struct{})
	go func() {
		for {
			if m := readProcMem(cmd.Process.Pid); m.rss > rssMax.Load() {
				rssMax.Store(m.rss)
				peak.Store(&m)
			}
			select {
			case <-stopRSS:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()

	var wg sync.WaitGroup
	lat := make([][]time.Duration, *writers)
	var sent atomic.Int64
	var rejected atomic.Int64
	start := time.Now()
	for w := 0; w < *writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			sw, err := spool.Open(spool.Options{Dir: filepath.Join(dir, "spool")})
			if err != nil {
				panic(err)
			}
			defer sw.Close()
			per := float64(*rate) / float64(*writers)
			const tick = 2 * time.Millisecond
			i := 0
			for t0 := time.Now(); time.Since(t0) < *dur; {
				due := int(per * time.Since(t0).Seconds())
				for ; i < due; i++ {
					p := makeEvent(fmt.Sprintf("customer-%03d", (i*7+w)%*customers), i)
					a := time.Now()
					if err := sw.Append(upload.KindEvent, p); err != nil {
						rejected.Add(1)
						continue
					}
					lat[w] = append(lat[w], time.Since(a))
					sent.Add(1)
				}
				time.Sleep(tick)
			}
		}(w)
	}
	wg.Wait()
	sendTime := time.Since(start)
	// Let the uploader finish what was sent.
	total := sent.Load()
	deadline := time.Now().Add(60 * time.Second)
	var after histogram
	for {
		after, err = scrapeHistogram(info, "activitybi_ingestion_lag_seconds")
		if err != nil {
			return err
		}
		if after.count-before.count >= float64(total) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	close(stopRSS)
	d := after.sub(before)
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	fmt.Printf("lag: rate %d/s target, %d writers, %d customers, %s\n", *rate, *writers, *customers, *dur)
	fmt.Printf("  sent %d events in %s (%.0f/s achieved), %d rejected by backpressure\n", total, sendTime.Round(time.Millisecond), float64(total)/sendTime.Seconds(), rejected.Load())
	fmt.Printf("  committed %d; ingestion lag (ack -> committed) p50 %s  p95 %s  p99 %s  max bucket %s\n",
		int64(d.count), fmtSec(d.quantile(0.50)), fmtSec(d.quantile(0.95)), fmtSec(d.quantile(0.99)), fmtSec(d.quantile(1)))
	fmt.Printf("  append latency p50 %s  p95 %s  p99 %s  max %s\n", pct(all, 0.50), pct(all, 0.95), pct(all, 0.99), pct(all, 1))
	heap := scrapeGauge(info, "go_memstats_heap_inuse_bytes")
	sys := scrapeGauge(info, "go_memstats_sys_bytes")
	released := scrapeGauge(info, "go_memstats_heap_released_bytes")
	fmt.Printf("  core peak RSS %.1f MB (at the end: Go heap in use %.1f MB, Go runtime total %.1f MB of which %.1f MB returned to the OS; the rest is DuckDB)\n",
		float64(rssMax.Load())/1024, heap/1e6, sys/1e6, released/1e6)
	if p := peak.Load(); p != nil {
		// Anonymous memory is the heaps (Go's, DuckDB's jemalloc, glibc's);
		// file-backed is mostly the binary's pages in use.
		fmt.Printf("  at the peak: anonymous %.1f MB, file-backed %.1f MB\n", float64(p.anon)/1024, float64(p.file)/1024)
	}
	if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", cmd.Process.Pid)); err == nil {
		if m, err := readSmaps(cmd.Process.Pid, exe); err == nil {
			fmt.Printf("  at the end: the binary's own pages %.1f MB resident (%.1f MB of them executable), other files %.1f MB, anonymous %.1f MB\n",
				float64(m.bin)/1024, float64(m.binExec)/1024, float64(m.otherFile)/1024, float64(m.anon)/1024)
		}
	}
	return nil
}

// smapsMem is a process's resident memory in KiB by kind of mapping.
type smapsMem struct{ bin, binExec, otherFile, anon int64 }

// readSmaps sums the Rss of pid's mappings from /proc/PID/smaps: those of
// the executable exe (split out: its code), other files (shared libraries),
// and anonymous ones (heaps, stacks). Linux only.
func readSmaps(pid int, exe string) (smapsMem, error) {
	var m smapsMem
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return m, err
	}
	var cur *int64
	exec := false
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if !strings.HasSuffix(f[0], ":") { // a mapping's header: addr perms offset dev inode [path]
			exec = len(f) > 1 && strings.Contains(f[1], "x")
			switch {
			case len(f) >= 6 && f[5] == exe:
				cur = &m.bin
			case len(f) >= 6 && f[4] != "0":
				cur, exec = &m.otherFile, false
			default:
				cur, exec = &m.anon, false
			}
			continue
		}
		if f[0] == "Rss:" && cur != nil && len(f) >= 2 {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			*cur += n
			if exec {
				m.binExec += n
			}
		}
	}
	return m, nil
}

// procMem is a process's resident memory in KiB, from /proc/PID/status.
type procMem struct{ rss, anon, file int64 }

// readProcMem reads VmRSS, RssAnon and RssFile of pid (Linux; zeros
// elsewhere).
func readProcMem(pid int) procMem {
	var m procMem
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return m
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		n, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			m.rss = n
		case "RssAnon:":
			m.anon = n
		case "RssFile:":
			m.file = n
		}
	}
	return m
}

func pct(s []time.Duration, q float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func fmtSec(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(10 * time.Microsecond).String()
}

func waitCore(dir string, pid int) (server.CoreInfo, error) {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		info, err := server.ReadCoreInfo(dir)
		if err == nil && info.PID == pid {
			if resp, err := http.Get(info.URL() + "/readyz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					return info, nil
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return server.CoreInfo{}, errors.New("core did not become ready")
}

type histogram struct {
	bounds []float64 // upper bounds, ascending, last +Inf
	counts []float64 // cumulative
	count  float64
}

func (h histogram) sub(o histogram) histogram {
	r := histogram{bounds: h.bounds, counts: make([]float64, len(h.counts)), count: h.count - o.count}
	for i := range h.counts {
		r.counts[i] = h.counts[i]
		if i < len(o.counts) {
			r.counts[i] -= o.counts[i]
		}
	}
	return r
}

// quantile interpolates linearly within the bucket, as Prometheus'
// histogram_quantile does.
func (h histogram) quantile(q float64) float64 {
	if h.count == 0 {
		return math.NaN()
	}
	rank := q * h.count
	lower, prev := 0.0, 0.0
	for i, b := range h.bounds {
		if h.counts[i] >= rank {
			if math.IsInf(b, 1) {
				return lower
			}
			if h.counts[i] == prev {
				return b
			}
			return lower + (b-lower)*(rank-prev)/(h.counts[i]-prev)
		}
		lower, prev = b, h.counts[i]
	}
	return lower
}

func scrapeHistogram(info server.CoreInfo, name string) (histogram, error) {
	resp, err := http.Get(info.URL() + "/metrics")
	if err != nil {
		return histogram{}, err
	}
	defer resp.Body.Close()
	var h histogram
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, name+"_bucket{le=\""):
			rest := strings.TrimPrefix(line, name+"_bucket{le=\"")
			le, val, _ := strings.Cut(rest, "\"} ")
			b, _ := strconv.ParseFloat(le, 64)
			if le == "+Inf" {
				b = math.Inf(1)
			}
			v, _ := strconv.ParseFloat(val, 64)
			h.bounds = append(h.bounds, b)
			h.counts = append(h.counts, v)
		case strings.HasPrefix(line, name+"_count "):
			h.count, _ = strconv.ParseFloat(strings.TrimPrefix(line, name+"_count "), 64)
		}
	}
	if len(h.bounds) == 0 {
		return h, fmt.Errorf("metric %s not found", name)
	}
	return h, sc.Err()
}

// uploadBench measures the uploader (spool -> DuckDB, exactly-once, with
// occurrence maintenance) against DuckDB's own read_ndjson bulk load of the
// same events into a table with the same primary key, in one run.
func uploadBench(args []string) error {
	fs := flag.NewFlagSet("upload", flag.ExitOnError)
	n := fs.Int("events", 200_000, "events")
	prof := fs.String("cpuprofile", "", "write a CPU profile of the uploader run to this file")
	verbose := fs.Bool("v", false, "log the warehouse's per-phase timings to stderr")
	batchSize := fs.Int("batch", 0, "uploader batch size in records (0 = the uploader's default)")
	customers := fs.Int("customers", 100, "distinct customers")
	// The driver's open options, to compare with DuckDB's defaults
	// (--checkpoint-threshold 16MB --storage-version v0.10.2) in one run.
	ckptThreshold := fs.String("checkpoint-threshold", "", "DuckDB checkpoint_threshold (empty = the driver's default)")
	storageVersion := fs.String("storage-version", "", "DuckDB storage_compatibility_version of the new file (empty = the driver's default)")
	// DuckDB's threads for the uploader's warehouse (the core's
	// warehouse.threads, default NumCPU-1 and at least 1); with 2 on two
	// CPUs, the calling thread spins in DuckDB's task loop while the worker
	// runs a statement's only task (bench/README.md).
	threads := fs.Int("threads", 0, "DuckDB threads of the uploader's warehouse (0 = the driver's default, NumCPU-1 with a minimum of 1)")
	fs.Parse(args)
	dir, err := os.MkdirTemp("", "activitybi-upload")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	// The same events as a plain NDJSON file and in the spool.
	nd := filepath.Join(dir, "events.ndjson")
	f, _ := os.Create(nd)
	bw := bufio.NewWriterSize(f, 1<<20)
	sw, err := spool.Open(spool.Options{Dir: filepath.Join(dir, "spool"), MaxPending: *n + 1})
	if err != nil {
		return err
	}
	batch := make([][]byte, 0, 1000)
	for i := 0; i < *n; i++ {
		p := makeEvent(fmt.Sprintf("customer-%03d", i%*customers), i)
		bw.Write(p)
		bw.WriteByte('\n')
		batch = append(batch, p)
		if len(batch) == cap(batch) {
			if err := sw.AppendBatch(upload.KindEvent, batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		if err := sw.AppendBatch(upload.KindEvent, batch); err != nil {
			return err
		}
	}
	sw.Close()
	bw.Flush()
	f.Close()

	// Ceiling: read_ndjson into a table with the same key, one statement.
	// CPU time is reported beside wall time: on a shared machine the wall
	// times of both move with other load, their CPU times much less.
	c0 := selfCPU()
	ceil, ceilCkpt, ceilCkptCPU, err := readNDJSON(filepath.Join(dir, "ceiling.duckdb"), nd)
	if err != nil {
		return fmt.Errorf("read_ndjson ceiling: %w", err)
	}
	ceilCPU := selfCPU() - c0 - ceilCkptCPU

	ctx := context.Background()
	var logger *slog.Logger
	if *verbose {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	db, err := duckdb.Open(ctx, duckdb.Options{Path: filepath.Join(dir, "warehouse.duckdb"), Logger: logger,
		CheckpointThreshold: *ckptThreshold, StorageVersion: *storageVersion, Threads: *threads})
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		return err
	}
	up, err := upload.New(upload.Options{SpoolDir: filepath.Join(dir, "spool"), Warehouse: db,
		BatchMaxRecords: *batchSize, BatchMaxBytes: int64(max(*batchSize, 20000)) * 500})
	if err != nil {
		return err
	}
	if *prof != "" {
		pf, err := os.Create(*prof)
		if err != nil {
			return err
		}
		pprof.StartCPUProfile(pf)
		defer pprof.StopCPUProfile()
	}
	t0, c1 := time.Now(), selfCPU()
	if err := up.Drain(ctx); err != nil {
		return err
	}
	el, upCPU := time.Since(t0), selfCPU()-c1
	st := up.Status()
	if st.Inserted != int64(*n) {
		return fmt.Errorf("uploader inserted %d of %d", st.Inserted, *n)
	}
	// What the drain left in the WAL is checkpointed when the uploader is
	// next idle (duckdb.DB.IdleCheckpoint); that cost is reported apart and
	// in a second ratio.
	var walBytes int64
	if fi, err := os.Stat(db.Path() + ".wal"); err == nil {
		walBytes = fi.Size()
	}
	t1, c2 := time.Now(), selfCPU()
	ran, err := db.IdleCheckpoint(ctx)
	if err != nil {
		return err
	}
	ckpt, ckptCPU := time.Since(t1), selfCPU()-c2
	upRate := float64(*n) / el.Seconds()
	ceilRate := float64(*n) / ceil.Seconds()
	threadsNote := "the driver's default, NumCPU-1 (min 1)"
	if *threads != 0 {
		threadsNote = "--threads"
	}
	fmt.Printf("upload: %d events, %d customers, checkpoint_threshold %s, storage version %s, threads %d (%s; the ceiling's: DuckDB's default, %d CPUs)\n", *n, *customers,
		cmp.Or(*ckptThreshold, duckdb.DefaultCheckpointThreshold), cmp.Or(*storageVersion, duckdb.DefaultStorageVersion),
		cmp.Or(*threads, duckdb.DefaultThreads), threadsNote, runtime.NumCPU())
	ceilWithRate := float64(*n) / (ceil + ceilCkpt).Seconds()
	fmt.Printf("  read_ndjson ceiling: %s  %.0f rows/s  (CPU %s)\n", ceil.Round(time.Millisecond), ceilRate, ceilCPU.Round(time.Millisecond))
	fmt.Printf("    then its CHECKPOINT (the primary-key index and what the INSERT left in memory, written to the file): %s (CPU %s); ceiling + checkpoint %.0f rows/s\n",
		ceilCkpt.Round(time.Millisecond), ceilCkptCPU.Round(time.Millisecond), ceilWithRate)
	fmt.Printf("  uploader (spool -> duckdb, dedup, occurrence): %s  %.0f rows/s  = %.1f%% of the ceiling  (CPU %s = %.1f%% of the ceiling's rows per CPU second)\n",
		el.Round(time.Millisecond), upRate, 100*upRate/ceilRate, upCPU.Round(time.Millisecond), 100*ceilCPU.Seconds()/upCPU.Seconds())
	if ran {
		withCkpt := float64(*n) / (el + ckpt).Seconds()
		fmt.Printf("    then the idle checkpoint of the %.1f MB WAL: %s (CPU %s); uploader + checkpoint %.0f rows/s = %.1f%% of the ceiling + its checkpoint (CPU %.1f%%; %.1f%% of the ceiling's INSERT alone)\n",
			float64(walBytes)/1e6, ckpt.Round(time.Millisecond), ckptCPU.Round(time.Millisecond), withCkpt, 100*withCkpt/ceilWithRate,
			100*(ceilCPU+ceilCkptCPU).Seconds()/(upCPU+ckptCPU).Seconds(), 100*withCkpt/ceilRate)
	} else {
		fmt.Printf("  then no idle checkpoint (WAL %.1f MB, below %d bytes)\n", float64(walBytes)/1e6, duckdb.DefaultIdleCheckpointBytes)
	}
	return nil
}

// readNDJSON bulk-loads nd into a new database at path with one INSERT
// from read_ndjson, then checkpoints it. It returns the INSERT's time and
// the checkpoint's time and CPU apart: the INSERT writes full row groups
// to the file as it goes, but the primary-key index and the rest reach the
// file only at a checkpoint, as the uploader's rows do at its idle
// checkpoint, so "both checkpointed" compares like with like.
func readNDJSON(path, nd string) (insert, ckpt, ckptCPU time.Duration, err error) {
	db, err := sql.Open("duckdb", path)
	if err != nil {
		return 0, 0, 0, err
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE t (activity_id VARCHAR, ts TIMESTAMP, customer VARCHAR NOT NULL, activity VARCHAR,
		anonymous_customer_id VARCHAR, feature_json JSON, revenue_impact DOUBLE, link VARCHAR,
		_received_at TIMESTAMP, _source VARCHAR, PRIMARY KEY (customer, activity_id))`); err != nil {
		return 0, 0, 0, err
	}
	t0 := time.Now()
	_, err = db.Exec(`INSERT INTO t SELECT activity_id, ts, customer, activity, anonymous_customer_id, feature_json,
		revenue_impact, link, _received_at, _source FROM read_ndjson(?, columns={activity_id:'VARCHAR', ts:'TIMESTAMP',
		customer:'VARCHAR', activity:'VARCHAR', anonymous_customer_id:'VARCHAR', feature_json:'JSON', revenue_impact:'DOUBLE',
		link:'VARCHAR', _received_at:'TIMESTAMP', _source:'VARCHAR'})`, nd)
	insert = time.Since(t0)
	if err != nil {
		return 0, 0, 0, err
	}
	t1, c1 := time.Now(), selfCPU()
	if _, err := db.Exec("CHECKPOINT"); err != nil {
		return 0, 0, 0, fmt.Errorf("checkpoint: %w", err)
	}
	ckpt, ckptCPU = time.Since(t1), selfCPU()-c1
	var c int
	if err := db.QueryRow("SELECT count(*) FROM t").Scan(&c); err != nil {
		return 0, 0, 0, err
	}
	if c == 0 {
		return 0, 0, 0, errors.New("ceiling loaded no rows")
	}
	return insert, ckpt, ckptCPU, nil
}

// appendBench runs N independent spool writers (each its own segment, as N
// processes would have) appending as fast as they can, and reports the
// sustained rate and per-append latency percentiles.
func appendBench(args []string) error {
	fs := flag.NewFlagSet("append", flag.ExitOnError)
	writers := fs.Int("writers", 1, "independent spool writers")
	dur := fs.Duration("duration", 5*time.Second, "how long to append")
	durability := fs.String("durability", "default", "default or sync")
	fs.Parse(args)
	d, err := spool.ParseDurability(*durability)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "activitybi-append")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	p := makeEvent("customer-001", 1)
	lat := make([][]time.Duration, *writers)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < *writers; w++ {
		sw, err := spool.Open(spool.Options{Dir: dir, Durability: d, MaxPending: 100_000_000})
		if err != nil {
			return err
		}
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			defer sw.Close()
			l := make([]time.Duration, 0, 1<<20)
			for t0 := time.Now(); time.Since(t0) < *dur; {
				a := time.Now()
				if err := sw.Append(upload.KindEvent, p); err != nil {
					panic(err)
				}
				l = append(l, time.Since(a))
			}
			lat[w] = l
		}(w)
	}
	wg.Wait()
	el := time.Since(start)
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	fmt.Printf("append: %d writers, durability %s, %s, %d-byte events\n", *writers, d, *dur, len(p))
	fmt.Printf("  %d appends, %.0f/s sustained; latency p50 %s  p95 %s  p99 %s  max %s\n",
		len(all), float64(len(all))/el.Seconds(), pct(all, 0.5), pct(all, 0.95), pct(all, 0.99), pct(all, 1))
	return nil
}

func scrapeGauge(info server.CoreInfo, name string) float64 {
	resp, err := http.Get(info.URL() + "/metrics")
	if err != nil {
		return math.NaN()
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return math.NaN()
}
