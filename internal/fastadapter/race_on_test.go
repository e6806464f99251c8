//go:build race

package fastadapter

// raceOn: the race detector makes sync.Pool drop pooled values at random
// (a quarter of them), so TestFastPathAllocs, whose RequestCtx is pooled,
// counts a remade one now and then; raceFastAllocs bounds that.
const (
	raceOn         = true
	raceFastAllocs = 14
)
