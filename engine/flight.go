package engine

import "sync/atomic"

// A flight keeps Shutdown waiting while something of a connection is still
// under way: a request (or pipelined burst) being served, a close waiting
// for its output to drain, a half-closed client's fallback writer. It is
// begun once and ended once: end may be called from every path that can
// finish the thing, in any goroutine, and only the first call counts, so
// the count of flights cannot be unbalanced.
type flight struct {
	g     *generation
	ended atomic.Bool
}

// begin starts h in generation g. Called once per flight.
func (h *flight) begin(g *generation) {
	h.g = g
	g.inflight.Add(1)
}

// end ends h; later calls do nothing. Any goroutine.
func (h *flight) end() {
	if h != nil && h.g != nil && h.ended.CompareAndSwap(false, true) {
		h.g.inflight.Add(-1)
	}
}
