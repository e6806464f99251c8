package engine

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"
)

// NetHTTP is what net/http.Server has beyond waitress's options, honoured
// as net/http honours it (SetNetHTTP): its per-connection callbacks, the
// server handlers see, a response's write deadline, and the OPTIONS *
// switch.
type NetHTTP struct {
	// ConnState is called as a connection changes state, with net/http's
	// states in net/http's order: StateNew once accepted, StateActive when
	// the first bytes of a request are read, StateIdle once its response
	// is complete and the connection is kept, StateHijacked when a handler
	// takes it, StateClosed when it closes (not after StateHijacked). It
	// runs on the connection's event loop and must not block. The net.Conn
	// stands for the connection: the same value in every call, with its
	// addresses; Close closes the connection; Read and Write fail (the
	// server owns the socket).
	ConnState func(net.Conn, http.ConnState)
	// BaseContext returns the base context for the connections of a
	// listener, once per listener as serving starts; it must not return
	// nil. Its values reach every request's context.
	BaseContext func(net.Listener) context.Context
	// ConnContext derives a connection's context (the parent of its
	// requests') from the listener's, once per connection, with the
	// net.Conn ConnState gets; it must not return nil.
	ConnContext func(ctx context.Context, c net.Conn) context.Context
	// Server is what handlers find under http.ServerContextKey; nil: an
	// *http.Server describing the options.
	Server *http.Server
	// WriteTimeout, if set, is each response's write deadline, counted
	// from when its handler starts: a write or flush after it fails, as
	// does one blocked past it on a client that does not read, and the
	// connection closes (net/http's WriteTimeout; http.ResponseController
	// can move it).
	WriteTimeout time.Duration
	// DisableGeneralOptionsHandler passes "OPTIONS *" to the handler
	// instead of answering it (net/http's field of that name).
	DisableGeneralOptionsHandler bool
}

// SetNetHTTP installs h; before serving only. The contexts (BaseContext,
// ConnContext), the write deadline and the OPTIONS * switch are net/http
// handlers' matters, refused for a fasthttp handler.
func (s *Server) SetNetHTTP(h NetHTTP) error {
	s.stopMu.Lock()
	defer s.stopMu.Unlock()
	if s.serving || s.stopped {
		return errors.New("waitron: SetNetHTTP after serving started")
	}
	if s.bare && (h.BaseContext != nil || h.ConnContext != nil || h.WriteTimeout != 0 || h.DisableGeneralOptionsHandler) {
		return errors.New("waitron: BaseContext, ConnContext, WriteTimeout and DisableGeneralOptionsHandler need net/http handlers")
	}
	if h.WriteTimeout < 0 {
		return errors.New("waitron: WriteTimeout is negative")
	}
	s.netHTTP = h
	if s.h2 != nil {
		s.h2.hs.ConnState = h.ConnState // the HTTP/2 server reports its connections' states
	}
	s.acfg.WriteTimeout, s.acfg.PassOptionsStar = h.WriteTimeout, h.DisableGeneralOptionsHandler
	if h.Server != nil {
		s.baseCtx = context.WithValue(context.Background(), http.ServerContextKey, h.Server)
	}
	return nil
}

// listenerBase is what a listener's accept loop hands with each
// connection to OnOpen (through gnet's Register): the listener's base
// context, when BaseContext gave one.
type listenerBase struct{ ctx context.Context }

// listenerBaseOf returns the base for ln's connections: nil without
// BaseContext.
func (s *Server) listenerBaseOf(ln net.Listener) *listenerBase {
	if s.netHTTP.BaseContext == nil {
		return nil
	}
	ctx := s.netHTTP.BaseContext(ln)
	if ctx == nil {
		panic("waitron: BaseContext returned a nil context") // as net/http
	}
	return &listenerBase{ctx: context.WithValue(ctx, http.ServerContextKey, s.baseCtx.Value(http.ServerContextKey))}
}

// connCtx returns the parent of c's requests' contexts when a hook shapes
// it (a listener's base, ConnContext), else nil: the local address's,
// shared. As net/http: the listener's base with the server, then
// ConnContext, then the local address. Loop only, at OnOpen.
func (c *conn) connCtx(base *listenerBase) context.Context {
	if base == nil && c.e.netHTTP.ConnContext == nil {
		return nil
	}
	ctx := c.e.baseCtx
	if base != nil {
		ctx = base.ctx
	}
	if cc := c.e.netHTTP.ConnContext; cc != nil {
		if ctx = cc(ctx, c.view()); ctx == nil {
			panic("waitron: ConnContext returned a nil context") // as net/http
		}
	}
	return context.WithValue(ctx, http.LocalAddrContextKey, c.local.addr)
}

// setState reports a new state to ConnState, if there is one and the
// state changed. Loop only.
func (c *conn) setState(st http.ConnState) {
	f := c.e.netHTTP.ConnState
	if f == nil {
		return
	}
	r := c.rares()
	if r.connState == st+1 {
		return
	}
	r.connState = st + 1
	f(c.view(), st)
}

// view returns the net.Conn that stands for c in the hooks, made once.
// Loop only.
func (c *conn) view() net.Conn {
	r := c.rares()
	if r.view == nil {
		r.view = &connView{local: c.local.addr, remote: c.remote, w: c.w}
	}
	return r.view
}

// connView is the net.Conn the hooks get for a connection the server owns.
type connView struct {
	local, remote net.Addr
	w             *writer
}

var errConnView = errors.New("waitron: this net.Conn stands for a connection the server owns: it has no Read or Write")

func (v *connView) Read([]byte) (int, error)         { return 0, errConnView }
func (v *connView) Write([]byte) (int, error)        { return 0, errConnView }
func (v *connView) Close() error                     { v.w.close(CloseRequested); return nil }
func (v *connView) LocalAddr() net.Addr              { return v.local }
func (v *connView) RemoteAddr() net.Addr             { return v.remote }
func (v *connView) SetDeadline(time.Time) error      { return nil }
func (v *connView) SetReadDeadline(time.Time) error  { return nil }
func (v *connView) SetWriteDeadline(time.Time) error { return nil }
