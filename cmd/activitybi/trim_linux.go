package main

import (
	"bufio"
	"encoding/binary"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// trimExecutable returns this process's clean pages of its own executable
// and of the shared libraries it loaded to the page cache and asks the
// kernel to fault them back one at a time.
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
// Last it drops the embedded font data (trimFontData).
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
			// The executable, and the shared libraries it loads
			// (libstdc++ for DuckDB: ~1.4 MB touched by its static
			// initialisers). Their page cache is left alone: other
			// programs map libc and friends.
			if err1 == nil && err2 == nil && (path == exe || sharedLibrary(path)) && !strings.Contains(perms, "w") {
				cur, curOK = region{uintptr(s), uintptr(e)}, true
			}
			continue
		}
		// A relocated (RELRO) page is a private copy: never dropped.
		if (fields[0] == "Private_Dirty:" || fields[0] == "Shared_Dirty:" || fields[0] == "Anonymous:") && len(fields) >= 2 && fields[1] != "0" {
			dirty = true
		}
	}
	flush()
	f.Close()
	for _, r := range regions {
		n := r.end - r.start
		syscall.Syscall(syscall.SYS_MADVISE, r.start, n, syscall.MADV_RANDOM)
		// Another process running this binary (the core an edge started,
		// reading it at its own start) puts its pages back in the page
		// cache as large folios, which a fault here would map whole,
		// 2 MiB with one PMD: no huge mappings of these regions.
		syscall.Syscall(syscall.SYS_MADVISE, r.start, n, syscall.MADV_NOHUGEPAGE)
		syscall.Syscall(syscall.SYS_MADVISE, r.start, n, syscall.MADV_DONTNEED)
	}
	if len(regions) > 0 {
		_ = unix.Fadvise(int(exeFile.Fd()), 0, 0, unix.FADV_DONTNEED)
	}
	trimFontData()
	return before, rssBytes()
}

// sharedLibrary reports whether path names a shared object (libfoo.so,
// libfoo.so.6.0.30, ld-linux-x86-64.so.2).
func sharedLibrary(path string) bool {
	base := path[strings.LastIndexByte(path, '/')+1:]
	return strings.HasPrefix(path, "/") && (strings.HasSuffix(base, ".so") || strings.Contains(base, ".so."))
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

// pagemap bits (Documentation/admin-guide/mm/pagemap.rst).
const (
	pagemapPresent  = 1 << 63
	pagemapFileOrSh = 1 << 61 // a file page, or shared anonymous
)

// trimFontData gives back this process's pages of fontData. The data sits
// in the binary's writable data segment (a private file mapping), which
// trimExecutable leaves alone: a page there that was written is an
// anonymous copy, and MADV_DONTNEED would throw the write away. So only
// whole pages inside a font's bytes are dropped, and only those that
// /proc/self/pagemap shows are still the file's own page (present, not
// anonymous): dropping such a page loses nothing, a later read (the core
// drawing a card's text) faults the same bytes back from the file. Nothing
// writes font data, so no page can turn anonymous between the check and
// the madvise. It returns the bytes given back.
func trimFontData() int64 {
	pm, err := os.Open("/proc/self/pagemap")
	if err != nil {
		return 0
	}
	defer pm.Close()
	ps := uintptr(os.Getpagesize())
	var dropped int64
	var entries []byte
	for _, b := range fontData {
		if len(b) == 0 {
			continue
		}
		start := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
		first := (start + ps - 1) &^ (ps - 1)         // the first whole page
		last := (start + uintptr(len(b))) &^ (ps - 1) // end of the last whole page
		if last <= first {
			continue
		}
		n := int((last - first) / ps)
		entries = slices.Grow(entries[:0], n*8)[:n*8]
		if _, err := pm.ReadAt(entries, int64(first/ps)*8); err != nil {
			continue
		}
		// Drop each run of pages that are the file's own.
		run := -1
		flush := func(end int) {
			if run >= 0 {
				if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, first+uintptr(run)*ps, uintptr(end-run)*ps, syscall.MADV_DONTNEED); errno == 0 {
					dropped += int64(end-run) * int64(ps)
				}
				run = -1
			}
		}
		for i := range n {
			e := binary.LittleEndian.Uint64(entries[i*8:])
			if e&pagemapPresent != 0 && e&pagemapFileOrSh != 0 {
				if run < 0 {
					run = i
				}
			} else {
				flush(i)
			}
		}
		flush(n)
	}
	return dropped
}
