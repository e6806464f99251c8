//go:build !race

package fastadapter

const (
	raceOn         = false
	raceFastAllocs = 0
)
