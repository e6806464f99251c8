package engine

import (
	"context"
	"iter"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// The event loops' own state: each loop's set of connections, its queue
// for the workers and counters, and the per-loop sweeps.

// loopConns is the set of connections of one event loop; only that loop
// touches it, so it needs no lock.
type loopConns struct {
	loop  gnet.EventLoop
	head  *conn     // the loop's connections, linked through their conn.link (a map cost 29 bytes each)
	queue *runQueue // this loop's requests for the workers
	// When to yield to the workers (yieldAfter): the loop's own.
	stretch  int64 // most requests waiting at a time since its queue was last empty
	batching bool  // the last stretch filled a batch (or this is a probe)
	handOffs int
	spare    spares // head slots and fasthttp records done with
	// halfClosed are the connections gnet has let go whose client
	// half-closed while a request was served: still answered, through a
	// fallback writer, until the loop closes them (see adoptHalfClosed).
	halfClosed map[*writer]*conn
	// The connections with open drain watches, and the timer that looks
	// at them while there are any (drain.go).
	watched    map[*conn]struct{}
	drainTimer *time.Timer
	drainArmed bool
	drainEvery time.Duration
	// The last stamp turned into a time.Time (timeOf).
	lastStamp stamp
	lastTime  time.Time
	// openedID is the connection whose opening time openedTime is: a
	// pipelined burst's requests are of one connection.
	openedID   uint64
	openedTime time.Time
	// Counted by this loop alone (no cache line shared between loops),
	// summed when asked.
	bytesIn atomic.Uint64 // bytes read
}

// timeOf returns st as a time.Time: the requests of one onTraffic call
// share their stamp, so the last conversion is kept. Loop only.
func (lc *loopConns) timeOf(st stamp) time.Time {
	if st != lc.lastStamp {
		lc.lastStamp, lc.lastTime = st, st.time()
	}
	return lc.lastTime
}

// openedOf returns when c was accepted, as a time.Time, converted once
// for consecutive requests of one connection. Loop only.
func (lc *loopConns) openedOf(c *conn) time.Time {
	if c.id != lc.openedID {
		lc.openedID, lc.openedTime = c.id, c.opened.time()
	}
	return lc.openedTime
}

// connLink links a connection into its loop's set.
type connLink struct{ prev, next *conn }

// add puts c in the set. Loop only.
func (lc *loopConns) add(c *conn) {
	c.link = connLink{next: lc.head}
	if lc.head != nil {
		lc.head.link.prev = c
	}
	lc.head = c
}

// remove takes c out of the set, if it is in it. Loop only.
func (lc *loopConns) remove(c *conn) {
	switch {
	case c.link.prev != nil:
		c.link.prev.link.next = c.link.next
	case lc.head == c:
		lc.head = c.link.next
	default:
		return // not in the set
	}
	if c.link.next != nil {
		c.link.next.link.prev = c.link.prev
	}
	c.link = connLink{}
}

// all yields the connections in the set; the one yielded may leave it
// (close) before the next is taken. Loop only.
func (lc *loopConns) all() iter.Seq[*conn] {
	return func(yield func(*conn) bool) {
		for c := lc.head; c != nil; {
			next := c.link.next
			if !yield(c) {
				return
			}
			c = next
		}
	}
}

// loopConnsOf returns the set of gc's loop. Loop only.
func (e *env) loopConnsOf(gc gnet.Conn) *loopConns {
	el := gc.EventLoop()
	if v, ok := e.loops.Load(el); ok {
		return v.(*loopConns)
	}
	// Only el stores its own entry, so the queue made here is the one used.
	// (A restart of the loops after an accept failure makes new loops, each
	// with a queue of its own; the old, empty ones stay in the dispatcher.)
	v, _ := e.loops.LoadOrStore(el, &loopConns{loop: el, queue: e.disp.newQueue()})
	return v.(*loopConns)
}

// maybeSweep closes idle connections every cleanup_interval: each loop
// sweeps its own connections, so no connection state is touched off-loop.
// OnTick goroutine only.
func (s *Server) maybeSweep(now time.Time) {
	every := s.cfg.sweepEvery
	if now.Sub(s.lastSweep) < every || s.loopsGone.Load() {
		return
	}
	s.lastSweep = now
	idle := s.cfg.idleTimeout
	s.onEveryConn(func(c *conn) { c.sweep(now, idle) })
}

// onEveryConn has each event loop run f on each of its connections, on
// the loop (nothing when the loops have stopped). Any goroutine; it does
// not wait.
func (s *Server) onEveryConn(f func(c *conn)) {
	if s.loopsGone.Load() {
		return
	}
	s.loops.Range(func(_, v any) bool {
		lc := v.(*loopConns)
		_ = lc.loop.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
			for c := range lc.all() {
				f(c)
			}
			return nil
		}))
		return true
	})
}

// collectAll has every loop collect the responses its workers wrote
// themselves (conn.collect), ending their flights: Shutdown asks it as it
// starts to wait, since a loop otherwise collects at the connection's next
// event. Any goroutine.
func (s *Server) collectAll() { s.onEveryConn(func(c *conn) { c.collect() }) }
