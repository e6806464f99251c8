package engine

import "sync/atomic"

// A flight keeps Shutdown waiting while something of a connection is still
// under way: a request (or pipelined burst) being served, a close waiting
// for its output to drain, a half-closed client's fallback writer. Each
// begin returns a ticket; end with that ticket counts once, however often
// it is called, so the count of flights cannot be unbalanced. A
// request's flight is begun and ended by its event loop alone: when the
// response's end has left the output queue (collect; or, the connection
// gone, the end's delivery itself), or at a hijack; the fallback writer's,
// by its goroutine. A flight is reused,
// one turn at a time, so nothing of a finished request is kept to hold its
// count, and an end with an old ticket cannot end the next turn's.
type flight struct {
	state atomic.Uint64 // the current ticket << 1, | 1 once it ended
}

// begin starts the next turn of f in generation g and returns its ticket.
// Only one goroutine begins a given flight, and only after its previous
// turn ended.
func (f *flight) begin(g *generation) uint64 {
	t := f.state.Load()>>1 + 1
	f.state.Store(t << 1)
	g.inflight.Add(1)
	return t
}

// end ends turn t of f in generation g; later calls, or calls with another
// ticket, do nothing. Any goroutine.
func (f *flight) end(g *generation, t uint64) {
	if t != 0 && f.state.CompareAndSwap(t<<1, t<<1|1) && g.inflight.Add(-1) == 0 {
		select { // Shutdown may be waiting for this
		case g.quiet <- struct{}{}:
		default:
		}
	}
}
