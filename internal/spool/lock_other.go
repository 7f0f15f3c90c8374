//go:build !unix

package spool

import (
	"errors"
	"os"
)

func tryLock(f *os.File) (held bool, err error) {
	return false, errors.New("spool: file locking is not supported on this platform")
}

func inode(fi os.FileInfo) uint64 { return 0 }
