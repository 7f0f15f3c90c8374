//go:build !unix

package main

import "time"

// selfCPU is not measured here: upload then reports 0 CPU.
func selfCPU() time.Duration { return 0 }
