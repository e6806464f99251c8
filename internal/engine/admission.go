package engine

import (
	"context"
	"sync"

	"github.com/panjf2000/gnet/v2"
)

// admission enforces connection_limit. gnet always accepts, so a client
// over the limit is accepted and parked: it is not read until a slot frees
// (waitress leaves such clients in the kernel's accept queue). At most
// backlog clients are parked, each at most channel_timeout; beyond either
// bound the client gets a 503 and is closed.
type admission struct {
	mu      sync.Mutex
	active  int     // client connections being served
	parked  []*conn // waiting for a slot, oldest first
	limited bool    // the limit has been reached and not yet relieved
}

// admit decides for a new connection: serve it, park it, or refuse it.
// Loop only (the connection's).
func (s *Server) admit(c *conn) (serve, refuse bool) {
	a := &c.w.gen.adm
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.active < s.cfg.connLimit && len(a.parked) == 0 {
		a.active++
		return true, false
	}
	if !a.limited {
		a.limited = true
		s.log.Warn("total open connections reached the connection limit; new clients wait for a free slot",
			"connection_limit", s.cfg.connLimit)
	}
	if len(a.parked) >= s.cfg.backlog {
		return false, true
	}
	c.st.park()
	c.rares().parkedAt = c.e.clock.stamp()
	a.parked = append(a.parked, c)
	return false, false
}

// release frees a slot of generation g (a served connection closed) and
// hands it to the oldest parked client still open. Loop only.
func (s *Server) release(g *generation) {
	a := &g.adm
	a.mu.Lock()
	a.active--
	var next *conn
	for len(a.parked) > 0 && next == nil {
		next, a.parked = a.parked[0], a.parked[1:]
		if next.w.q.closed.Load() {
			next = nil
		}
	}
	if next != nil {
		a.active++
	} else if a.limited && a.active < s.cfg.connLimit {
		a.limited = false
		s.log.Info("open connections dropped below the connection limit; serving new clients at once again")
	}
	a.mu.Unlock()
	if next != nil {
		s.unpark(next)
	}
}

// unpark starts serving a parked connection on its own loop.
func (s *Server) unpark(c *conn) {
	if s.loopsGone.Load() {
		return
	}
	err := c.gc.EventLoop().Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
		c.st.unpark()
		if c.w.q.closed.Load() { // it went away meanwhile: pass the slot on
			s.release(c.w.gen)
			return nil
		}
		c.active = c.e.clock.stamp()
		c.process()
		return nil
	}))
	if err != nil {
		s.release(c.w.gen)
	}
}

// unparkRemove drops a parked connection that closed. Loop only.
func (c *conn) unparkRemove() {
	a := &c.w.gen.adm
	a.mu.Lock()
	defer a.mu.Unlock()
	for i, p := range a.parked {
		if p == c {
			a.parked = append(a.parked[:i], a.parked[i+1:]...)
			return
		}
	}
}

// refuseOverload answers 503 and closes. Loop only.
func (c *conn) refuseOverload(why string) {
	c.answerUnserved(503, why, CloseOverload, servedHead{"-", "-", "-"})
	c.close(CloseOverload, why)
}
