//go:build race

package card

// raceEnabled: the race detector slows drawing about tenfold; the
// property test then runs fewer cases.
const raceEnabled = true
