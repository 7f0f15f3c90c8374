package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat:
// 100 on every Linux architecture Go supports.
const clockTicks = 100

// procCPU is the user and system CPU time a process has used so far, read
// from /proc/PID/stat (Linux; pid 0 means this process). It returns 0 when it
// cannot read it, so a report shows no CPU rather than failing the run.
func procCPU(pid int) (user, sys time.Duration) {
	p := "/proc/self/stat"
	if pid > 0 {
		p = fmt.Sprintf("/proc/%d/stat", pid)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, 0
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// count fields after its closing parenthesis. utime and stime are
	// fields 14 and 15, so the 12th and 13th after it.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 13 {
		return 0, 0
	}
	u, _ := strconv.ParseInt(string(f[11]), 10, 64)
	s, _ := strconv.ParseInt(string(f[12]), 10, 64)
	return time.Duration(u) * time.Second / clockTicks, time.Duration(s) * time.Second / clockTicks
}

// cpuUse is the CPU a process used between two reads of procCPU.
type cpuUse struct {
	pid        int
	user, sys  time.Duration
	dUser, dSy time.Duration
}

func startCPU(pid int) *cpuUse {
	c := &cpuUse{pid: pid}
	c.user, c.sys = procCPU(pid)
	return c
}

func (c *cpuUse) finish() {
	u, s := procCPU(c.pid)
	c.dUser, c.dSy = u-c.user, s-c.sys
}

func (c *cpuUse) total() time.Duration { return c.dUser + c.dSy }

// selfCPU is this process's user+system CPU time so far (its DuckDB
// threads included).
func selfCPU() time.Duration {
	u, s := procCPU(0)
	return u + s
}
