//go:build unix

package main

import "syscall"

// detached starts a child in its own session: it outlives its parent and
// does not get the terminal's or the client's signals.
func detached() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setsid: true} }
