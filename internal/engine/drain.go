package engine

import (
	"context"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// The drained event. gnet writes a connection's buffered output whenever
// the socket takes more, and tells nobody: it has no "drained" callback.
// So each event loop keeps the watches its connections' waiters placed —
// "tell me when this connection's pending output is at most mark" — and
// looks at them itself: when the watch is placed, when the connection has
// traffic (onTraffic), and on one timer per loop
// that runs only while a watch is open, every drainTick at first and
// less often (up to drainTickMax) while none is met. A watch with a
// deadline and a mark never met is the loop's timer too: the linger
// after a close (closeDrained). A met watch fires,
// on the loop, once; so does every watch of a connection that closes
// (drained false), and one whose deadline passes. Waiters block on what
// the fire does (a channel, or loop code for a close that waits); no
// waiter sleeps or polls.

const (
	drainTick    = time.Millisecond
	drainTickMax = 20 * time.Millisecond
)

// drainWatch is one waiter's wait for a connection's pending output to
// fall to at most mark.
type drainWatch struct {
	mark     int64
	gnetOnly bool               // count only what gnet holds or is queued for it, not the output spool
	deadline stamp              // fire(false) once it passes; zero: none
	fire     func(drained bool) // runs on the loop, once
}

// pendingOut returns the connection's output not yet on the wire: queued
// for gnet, in gnet's buffer, and (unless gnetOnly) in the output spool.
// It refreshes the workers' figure of gnet's buffer. Loop only.
func (c *conn) pendingOut(gnetOnly bool) int64 {
	var out int64
	if fb := c.w.q.fb.Load(); fb != nil { // a half-closed client's: gnet let it go
		out = fb.pendingBytes()
	} else {
		out = int64(c.gc.OutboundBuffered())
		c.w.q.buffered.Store(out)
	}
	n := out + c.w.q.queued.Load()
	if sp := c.w.q.spool.Load(); sp != nil && !gnetOnly {
		n += sp.spooled()
	}
	return n
}

// watchDrain fires fire(true) once the connection's pending output is at
// most mark — now, if it is — or fire(false) if the connection closes or
// the deadline (if any) passes first. Loop only.
func (c *conn) watchDrain(mark int64, gnetOnly bool, deadline stamp, fire func(drained bool)) {
	if c.w.q.closed.Load() && !c.st.eof {
		fire(false)
		return
	}
	if c.pendingOut(gnetOnly) <= mark {
		fire(true)
		return
	}
	r := c.rares()
	r.watches = append(r.watches, drainWatch{mark: mark, gnetOnly: gnetOnly, deadline: deadline, fire: fire})
	c.lc.watch(c)
}

// checkDrains fires the watches of c that are met or past their
// deadline, and reports whether any is still open. Loop only.
func (c *conn) checkDrains(now stamp) (open bool) {
	if c.rare == nil || len(c.rare.watches) == 0 {
		return false
	}
	type firing struct {
		fire    func(bool)
		drained bool
	}
	ws := c.rare.watches
	keep := ws[:0]
	var fired []firing
	for _, w := range ws {
		switch {
		case c.pendingOut(w.gnetOnly) <= w.mark:
			fired = append(fired, firing{w.fire, true})
		case w.deadline != 0 && now >= w.deadline:
			fired = append(fired, firing{w.fire, false})
		default:
			keep = append(keep, w)
		}
	}
	clear(ws[len(keep):])
	c.rare.watches = keep
	for _, f := range fired { // after the list is consistent: a fire may place a new watch
		f.fire(f.drained)
	}
	return len(c.rare.watches) > 0
}

// endWatches fires every watch of c with drained false: the connection
// is gone. Loop only.
func (c *conn) endWatches() {
	if c.rare == nil || len(c.rare.watches) == 0 {
		return
	}
	ws := c.rare.watches
	c.rare.watches = nil
	for _, w := range ws {
		w.fire(false)
	}
}

// watch adds c to the connections whose watches the loop looks at, and
// arms the loop's drain timer. Loop only.
func (lc *loopConns) watch(c *conn) {
	if lc.watched == nil {
		lc.watched = make(map[*conn]struct{})
	}
	lc.watched[c] = struct{}{}
	lc.drainEvery = drainTick // a new wait: look soon
	if !lc.drainArmed {
		lc.drainArmed = true
		if lc.drainTimer == nil {
			lc.drainTimer = time.AfterFunc(lc.drainEvery, lc.onDrainTimer)
		} else {
			lc.drainTimer.Reset(lc.drainEvery)
		}
	}
}

// onDrainTimer runs the loop's look at its watches on the loop. The
// timer's goroutine.
func (lc *loopConns) onDrainTimer() {
	_ = lc.loop.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
		lc.checkDrains()
		return nil
	}))
}

// checkDrains looks at every watched connection, and arms the timer again
// while a watch is open, less often while none is met. Loop only.
func (lc *loopConns) checkDrains() {
	now := stamp(0)
	fired := false
	for c := range lc.watched {
		if now == 0 {
			now = c.e.clock.stamp()
		}
		before := len(c.rare.watches)
		if !c.checkDrains(now) {
			delete(lc.watched, c)
		}
		fired = fired || len(c.rare.watches) < before
	}
	if len(lc.watched) == 0 {
		lc.drainArmed = false
		return
	}
	if fired {
		lc.drainEvery = drainTick
	} else {
		lc.drainEvery = min(2*lc.drainEvery, drainTickMax)
	}
	lc.drainTimer.Reset(lc.drainEvery)
}

// unwatch forgets c (it closed; its watches have fired). Loop only.
func (lc *loopConns) unwatch(c *conn) { delete(lc.watched, c) }

// noteOutput looks at c's watches at an event of the connection (its
// traffic), between the timer's looks. Loop only.
func (c *conn) noteOutput() {
	if c.rare != nil && len(c.rare.watches) > 0 && !c.checkDrains(c.now()) {
		c.lc.unwatch(c)
	}
}
