package engine

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// gnet's events: the callbacks gnet makes, each handing over to the
// connection or the server.

// handler implements gnet.EventHandler. Every callback runs on an event
// loop except OnTick (gnet's ticker goroutine) and OnBoot.
type handler struct {
	gnet.BuiltinEventEngine
	s *Server
}

// OnBoot keeps the run's engine for onStart to publish: its loops do not
// exist yet, and Register on it would race with gnet starting them.
func (h *handler) OnBoot(eng gnet.Engine) gnet.Action {
	h.s.booted = eng
	os.RemoveAll(h.s.placeholderDir) // bound already; now nobody can connect to it
	return gnet.None
}

// OnShutdown runs as gnet stops its loops, before it closes the
// connections: when Shutdown did not ask for it, those closes are the
// server's restart (CloseServerRestart).
func (h *handler) OnShutdown(gnet.Engine) {
	if !h.s.stopping.Load() {
		h.s.gen.Load().stopped.Store(true)
	}
}

func (h *handler) OnTick() (time.Duration, gnet.Action) {
	h.s.refreshDate()
	if h.s.started.CompareAndSwap(false, true) {
		h.s.onStart()
	}
	now := h.s.clock.now()
	h.s.maybeSweep(now)
	h.s.checkDeadlines(now)
	h.s.disp.prune()
	h.s.tls.tick()
	h.s.h2.unblock(h.s.clock.stamp())
	if st := h.s.clock.stamp(); h.s.files.idle(st) {
		go h.s.files.trim(st)
	}
	// The next tick comes at the next whole second, so Date changes on time.
	return time.Until(time.Now().Truncate(time.Second).Add(time.Second)) + time.Millisecond, gnet.None
}

func (h *handler) OnOpen(gc gnet.Conn) ([]byte, gnet.Action) {
	s := h.s
	if s.draining.Load() {
		return nil, gnet.Close
	}
	var tlsOpen *tlsOpening
	base, _ := gc.Context().(*listenerBase)
	if o, ok := gc.Context().(*tlsOpening); ok {
		tlsOpen, base = o, o.base
	}
	c := newConn(s, gc, s.loopConnsOf(gc))
	gc.SetContext(c)
	if tlsOpen != nil {
		// From here crypto/tls reads the ciphertext gnet reads; what the
		// handshake read beyond itself waits in the tls.Conn, so the
		// connection is woken to look at it.
		tlsOpen.tr.gc, tlsOpen.tr.nc = gc, nil
		c.w.tls = &tlsConn{tc: tlsOpen.tc, tr: tlsOpen.tr, state: tlsOpen.state}
		c.proxied = true // a PROXY protocol header came before the handshake, or none
		if a := tlsOpen.remote; a != nil {
			c.remote, c.w.remoteStr = a, a.String()
		}
		_ = gc.Wake(nil)
	}
	if ctx := c.connCtx(base); ctx != nil {
		c.w.ctx, c.w.cancel = context.WithCancelCause(ctx)
	}
	c.setState(http.StateNew)
	c.w.gen.conns.Add(1)
	c.lc.add(c)
	if _, refuse := s.admit(c); refuse {
		c.st.refuse()
		c.refuseOverload("Too many clients are waiting for a connection slot (connection_limit, backlog)")
	}
	return nil, gnet.None
}

func (h *handler) OnTraffic(gc gnet.Conn) gnet.Action {
	if c, ok := gc.Context().(*conn); ok {
		c.onTraffic()
	}
	return gnet.None
}

func (h *handler) OnClose(gc gnet.Conn, err error) gnet.Action {
	if c, ok := gc.Context().(*conn); ok {
		c.w.gen.conns.Add(-1)
		c.lc.remove(c) // the set it joined in OnOpen (a restart of the loops makes new sets)
		switch {
		case c.h2: // its connection_limit slot went with it to the HTTP/2 server
		case c.st.refused():
		case c.st.parked():
			c.unparkRemove()
		default:
			h.s.release(c.w.gen)
		}
		c.onClose(err)
	}
	return gnet.None
}

// gnetLogger sends gnet's own log lines to the server's logger instead of
// gnet's process-global stdout logger.
type gnetLogger struct{ l *slog.Logger }

func (g gnetLogger) Debugf(f string, a ...any) { g.l.Debug(strings.TrimSpace(fmt.Sprintf(f, a...))) }
func (g gnetLogger) Infof(f string, a ...any)  { g.l.Debug(strings.TrimSpace(fmt.Sprintf(f, a...))) }
func (g gnetLogger) Warnf(f string, a ...any)  { g.l.Warn(strings.TrimSpace(fmt.Sprintf(f, a...))) }
func (g gnetLogger) Errorf(f string, a ...any) { g.l.Error(strings.TrimSpace(fmt.Sprintf(f, a...))) }
func (g gnetLogger) Fatalf(f string, a ...any) { g.l.Error(strings.TrimSpace(fmt.Sprintf(f, a...))) }
