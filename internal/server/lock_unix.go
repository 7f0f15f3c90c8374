//go:build unix

package server

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// tryLock takes an exclusive flock on f without waiting; errLocked when
// another open file description holds it. The kernel releases it when the
// process exits, however it exits.
func tryLock(f *os.File) error {
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return errLocked
	}
	return err
}

// checkPrivateDir refuses a directory that another user owns or may write
// in: a socket in it could be replaced by theirs.
func checkPrivateDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if int(st.Uid) != os.Getuid() || fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("socket directory %s must belong to this user and be writable by no one else (e.g. mode 0700), it is %v owned by uid %d",
			dir, fi.Mode().Perm(), st.Uid)
	}
	return nil
}
