//go:build !race

package adapter

const raceAllocs = 0
