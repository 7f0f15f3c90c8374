//go:build unix

package main

import (
	"syscall"
	"time"
)

// selfCPU is the user+system CPU time this process has used (its DuckDB
// threads included).
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
