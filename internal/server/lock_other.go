//go:build !unix

package server

import (
	"errors"
	"os"
)

// tryLock is not implemented off Unix yet (the spool's locking is Unix-only
// too): the core refuses to start rather than run without its guard.
func tryLock(*os.File) error {
	return errors.New("the core lock is not supported on this operating system yet")
}

// checkPrivateDir: off Unix the socket lives in the data directory.
func checkPrivateDir(string) error { return nil }
