//go:build unix

package main

import (
	"errors"
	"os"
	"strconv"
	"syscall"
)

// tryLockFile takes an exclusive flock on path (created 0600) without
// waiting. ok is false when another open file description holds it. The
// kernel releases the lock when f is closed or the process exits, however
// it exits.
func tryLockFile(path string) (f *os.File, ok bool, err error) {
	f, err = os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, false, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if errors.Is(err, syscall.EWOULDBLOCK) {
		f.Close()
		return nil, false, nil
	}
	if err != nil {
		f.Close()
		return nil, false, err
	}
	// For a person wondering which edge ships.
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return f, true, nil
}

// lockHeld reports whether another open file description holds the flock
// on path, without creating or writing the file (tryLockFile writes its
// pid). A missing file is not held.
func lockHeld(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	// Closing f releases the lock when it was taken.
	return errors.Is(err, syscall.EWOULDBLOCK)
}
