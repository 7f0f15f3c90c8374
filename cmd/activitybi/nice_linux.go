package main

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// lowerPriority raises the nice value of every thread of this process to n
// (Linux keeps a nice value per thread, and a new thread takes its
// creator's, so the threads the Go runtime and DuckDB start later inherit
// it). Raising one's own nice value needs no privilege.
func lowerPriority(n int) error {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return fmt.Errorf("list threads: %w", err)
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, n); err != nil && err != syscall.ESRCH {
			return fmt.Errorf("set the nice value of thread %d: %w", tid, err)
		}
	}
	return nil
}
