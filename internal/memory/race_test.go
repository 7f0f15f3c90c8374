//go:build race

package memory

// raceEnabled: the race detector slows Render ~8x; the exhaustive sweeps
// sample instead.
const raceEnabled = true
