package main

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"syscall"
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
// It returns the RSS in bytes before and after, for the log.
func trimExecutable() (before, after int64) {
	before = rssBytes()
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return before, before
	}
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
