//go:build !linux

package main

import "errors"

// lowerPriority is implemented on Linux only (per-thread nice values).
func lowerPriority(n int) error {
	if n == 0 {
		return nil
	}
	return errors.New("lowering the core's CPU priority is supported on Linux only")
}
