//go:build !unix

package main

import (
	"errors"
	"os"
)

// tryLockFile is not implemented off Unix yet (nor is the spool's locking):
// the remote edge spools but does not ship rather than run two shippers.
func tryLockFile(string) (*os.File, bool, error) {
	return nil, false, errors.New("the shipper lock is not supported on this operating system yet")
}

// lockHeld cannot tell off Unix: no spool is ever shipped there, so none is
// taken for shipped.
func lockHeld(string) bool { return false }
