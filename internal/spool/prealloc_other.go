//go:build !linux

package spool

import "os"

// preallocate does nothing outside Linux: segments grow with each append.
func preallocate(*os.File, int64) bool { return false }

// datasync is a full fsync outside Linux.
func datasync(f *os.File) error { return f.Sync() }
