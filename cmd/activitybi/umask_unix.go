//go:build unix

package main

import "syscall"

// privateFiles makes every file and folder this process creates readable by
// its user only, whatever the shell's umask: the warehouse file and its WAL
// (which DuckDB creates with the default mode, and whose path may be outside
// the 0700 data folder), spill files, exports, rejects. Called once, in
// main, before any goroutine creates a file.
func privateFiles() { syscall.Umask(0o077) }
