package main

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// trimExecutable returns this process's clean pages of its own executable
// to the page cache and asks the kernel to fault them back one at a time.
//
// Why: the binary is ~90 MB because it embeds DuckDB, and starting any
// command runs DuckDB's C++ static initialisers and every Go package's init,
// touching ~25 MB of code and read-only data that an edge never uses again.
// RSS counts them for each of a person's edges. The pages are clean copies
// of the file (a read-only mapping with no private dirty page), so dropping
// them loses nothing: the ones the edge does use fault back in from the
// page cache (MADV_RANDOM stops the kernel from mapping 64 KiB around each
// fault). Writable or dirty mappings are never touched.
//
// Then it evicts the executable's page-cache pages that no process maps
// any more (posix_fadvise DONTNEED). Readahead leaves the file's pages in
// large folios (up to 2 MiB on recent kernels), and a fault maps the whole
// folio, with one PMD when it can: a few touched bytes then count as
// megabytes of RSS, in every process running the binary. Evicted, the pages
// this process faults back come in one at a time (no readahead under
// MADV_RANDOM). Pages another process maps stay; the cost is reading again
// from disk what is used again (bench/mcp.md, "Edge RSS and the page
// cache's large folios": an edge idle at 26-31 MB instead of 46 MB).
//
// It returns the RSS in bytes before and after, for the log.
func trimExecutable() (before, after int64) {
	before = rssBytes()
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return before, before
	}
	// A binary just built (go run, go build) is still dirty in the page
	// cache, and dirty pages are skipped below: write it back first (a
	// no-op for one installed long ago).
	exeFile, err := os.Open(exe)
	if err != nil {
		return before, before
	}
	defer exeFile.Close()
	_ = exeFile.Sync()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return before, before
	}
	type region struct{ start, end uintptr }
	var regions []region
	var cur region
	curOK, dirty := false, false
	flush := func() {
		if curOK && !dirty {
			regions = append(regions, cur)
		}
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if strings.Contains(fields[0], "-") && len(fields) >= 5 && !strings.HasSuffix(fields[0], ":") {
			flush()
			curOK, dirty = false, false
			se := strings.SplitN(fields[0], "-", 2)
			s, err1 := strconv.ParseUint(se[0], 16, 64)
			e, err2 := strconv.ParseUint(se[1], 16, 64)
			perms := fields[1]
			path := ""
			if len(fields) >= 6 {
				path = fields[5]
			}
			if err1 == nil && err2 == nil && path == exe && !strings.Contains(perms, "w") {
				cur, curOK = region{uintptr(s), uintptr(e)}, true
			}
			continue
		}
		if (fields[0] == "Private_Dirty:" || fields[0] == "Shared_Dirty:") && len(fields) >= 2 && fields[1] != "0" {
			dirty = true
		}
	}
	flush()
	f.Close()
	for _, r := range regions {
		n := r.end - r.start
		syscall.Syscall(syscall.SYS_MADVISE, r.start, n, syscall.MADV_RANDOM)
		syscall.Syscall(syscall.SYS_MADVISE, r.start, n, syscall.MADV_DONTNEED)
	}
	if len(regions) > 0 {
		_ = unix.Fadvise(int(exeFile.Fd()), 0, 0, unix.FADV_DONTNEED)
	}
	return before, rssBytes()
}

// rssBytes is this process's resident set size.
func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}
