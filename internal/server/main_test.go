package server

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test leaves no goroutine behind: servers, sessions, the stdio fast
// path's reader and the edge link all end with what started them.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
