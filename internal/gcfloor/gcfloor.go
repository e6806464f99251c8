// Package gcfloor gives the Go collector a floor under its heap goal: while
// the live heap is small, the next collection waits until the heap reaches
// the floor instead of twice the live heap. The Go runtime's own floor is 4
// MiB, which a busy server with a small live heap crosses hundreds of times a
// second, spending a third of its time collecting (docs/benchmarks-history.md).
// Above half the floor the live heap decides, exactly as with GOGC=100, so
// memory never exceeds max(floor, what Go would use anyway).
//
// Libraries that tune GOGC (bytedance/gopkg's gctuner and its forks) read
// runtime.ReadMemStats, which stops the world, after every collection and
// let GOGC fall below 100 under a large heap; this reads the live heap from
// runtime/metrics, which does not stop the world, and never collects more
// often than Go's default.
package gcfloor

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
)

// Base is the GOGC value the floor raises from and returns to: Go's default.
const Base = 100

const liveMetric = "/gc/heap/live:bytes"

// Floor adjusts GOGC after every collection until Stop.
type Floor struct {
	floor   uint64
	stopped atomic.Bool
	mu      sync.Mutex // serialises adjust and Stop's reset
	percent int
	sample  []metrics.Sample
}

// Start sets a floor of bytes under the heap goal (bytes > 0) and returns
// its handle. Only one Floor should run in a process: GOGC is global.
func Start(bytes uint64) *Floor {
	f := &Floor{floor: bytes, percent: Base, sample: []metrics.Sample{{Name: liveMetric}}}
	f.adjust()
	f.arm()
	return f
}

// Percent returns the GOGC value the floor last set.
func (f *Floor) Percent() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.percent
}

// Stop ends the adjustments and gives GOGC back its Base value.
func (f *Floor) Stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped.Swap(true) {
		return
	}
	debug.SetGCPercent(Base)
	f.percent = Base
}

// arm leaves an unreachable object whose finalizer runs after the next
// collection, adjusts, and arms again: one adjustment per cycle, on the
// runtime's finalizer goroutine.
func (f *Floor) arm() {
	s := &sentinel{f: f}
	runtime.SetFinalizer(s, func(s *sentinel) {
		if s.f.stopped.Load() {
			return
		}
		s.f.adjust()
		s.f.arm()
	})
}

// sentinel holds a pointer, so it is never a tiny (pointer-free, combined)
// allocation whose finalizer could wait for its neighbours.
type sentinel struct{ f *Floor }

// adjust sets GOGC so the next goal is the floor while the live heap is
// below half of it; Base above.
func (f *Floor) adjust() {
	metrics.Read(f.sample)
	var live uint64
	if f.sample[0].Value.Kind() == metrics.KindUint64 {
		live = f.sample[0].Value.Uint64()
	}
	p := Percent(live, f.floor)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped.Load() {
		return
	}
	// Small moves are not worth the heap lock SetGCPercent takes.
	if p == f.percent || p > Base && f.percent > Base && abs(p-f.percent)*10 < f.percent {
		return
	}
	debug.SetGCPercent(p)
	f.percent = p
}

// Percent is the GOGC value that puts the heap goal at floor for a live
// heap of live bytes (0: none measured yet), never below Base. Go's goal is
// the larger of live*(1+GOGC/100) and a minimum heap of 4 MiB*GOGC/100, so
// both are held to floor: the first while the heap is nearly empty, the
// second as it fills; from half the floor on, Base leaves the goal to Go.
func Percent(live, floor uint64) int {
	p := float64(floor) / minimumHeap * 100
	if live > 0 {
		p = min(p, float64(floor-min(live, floor))/float64(live)*100)
	}
	return int(max(min(p, maxPercent), Base))
}

// maxPercent bounds what Percent returns, so that a huge floor cannot
// overflow GOGC (an int32 inside the runtime).
const maxPercent = 1 << 20

// minimumHeap is the Go runtime's heap minimum at GOGC=100, which it scales
// with GOGC (runtime/mgcpacer.go, defaultHeapMinimum).
const minimumHeap = 4 << 20

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
