//go:build race

package adapter

// raceAllocs is what the race detector adds to TestRequestPathAllocs.
const raceAllocs = 1

// raceOn: the race detector makes sync.Pool drop pooled values at random
// (a quarter of them), so TestFastPathAllocs, whose RequestCtx is pooled,
// counts a remade one now and then: on average over its 1000 requests
// about 9 allocations (measured); raceFastAllocs bounds that.
const (
	raceOn         = true
	raceFastAllocs = 14
)
