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
// it). A thread started while the list is walked, by a thread not yet
// lowered, would keep the old value: the walk is repeated until it finds
// no thread it has not lowered. Raising one's own nice value needs no
// privilege.
func lowerPriority(n int) error {
	done := map[int]bool{}
	for pass := 0; pass < maxNicePasses; pass++ {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return fmt.Errorf("list threads: %w", err)
		}
		fresh := false
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil || done[tid] {
				continue
			}
			fresh = true
			if err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, n); err != nil && err != syscall.ESRCH {
				return fmt.Errorf("set the nice value of thread %d: %w", tid, err)
			}
			done[tid] = true
		}
		if !fresh {
			return nil
		}
	}
	return fmt.Errorf("threads kept appearing after %d passes; some may run at the old nice value", maxNicePasses)
}

// maxNicePasses bounds lowerPriority's walks of the thread list.
const maxNicePasses = 10
