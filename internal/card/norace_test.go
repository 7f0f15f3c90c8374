//go:build !race

package card

const raceEnabled = false
