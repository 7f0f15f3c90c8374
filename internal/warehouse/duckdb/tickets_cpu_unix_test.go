//go:build unix

package duckdb

import (
	"syscall"
	"time"
)

// ticketsCPU is the CPU time (user + system) this process has used.
func ticketsCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
