//go:build !race

package adapter

const raceAllocs = 0

const (
	raceOn         = false
	raceFastAllocs = 0
)
