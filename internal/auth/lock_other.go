//go:build !unix

package auth

import "errors"

// lock is not implemented off Unix yet (like the core lock): creating or
// revoking tokens is refused rather than done without the guard that keeps
// concurrent writers from losing each other's changes. Reading and verifying
// tokens work everywhere.
func lock(string) (func(), error) {
	return nil, errors.New("changing tokens is not supported on this operating system yet (it needs flock)")
}
