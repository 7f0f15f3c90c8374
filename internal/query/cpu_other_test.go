//go:build !unix

package query

import "time"

func processCPU() time.Duration { return 0 }
