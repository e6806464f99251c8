package engine

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"

	"github.com/waitron/waitron/internal/adapter"
)

// HTTP/2
//
// A connection that speaks HTTP/2 — a TLS client that chose h2 by ALPN,
// or a plain one that opened with the HTTP/2 connection preface (h2c by
// prior knowledge) — is served by Go's own HTTP/2 server
// (golang.org/x/net/http2, ServeConn), on Go's network poller like a
// hijacked connection: frames, flow control, HPACK and the defences of
// that server (rapid reset, CONTINUATION floods, SETTINGS floods) are
// Go's, not reimplemented. What waitron adds is its serving model: each
// stream's handler runs in one of waitron's threads places (the stream's
// goroutine takes a free one itself, or hands the request to the
// dispatcher and waits for a worker), so at most threads handlers run at
// once across HTTP/1 and HTTP/2; queue_limit and
// queue_timeout shed them as any request; the connection takes a slot of
// connection_limit; its preface (and SETTINGS) must arrive within
// request_header_timeout; channel_timeout is its idle timeout and
// send_timeout its write timeout; Shutdown sends GOAWAY and waits for the
// streams in flight; responses are counted and logged as HTTP/1 ones.

// h2Preface is the start of an HTTP/2 connection (RFC 9113 §3.4).
var h2Preface = []byte(http2.ClientPreface)

// h2Server is a server's HTTP/2 side.
type h2Server struct {
	s     *Server
	srv   any          // what handlers find under http.ServerContextKey (set as Serve starts)
	hs    *http.Server // the HTTP/2 server's base configuration
	h2    *http2.Server
	q     *runQueue // the dispatcher's queue for HTTP/2 requests
	open  atomic.Int64
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// newH2Server sets HTTP/2 up for s: nil when http2 is off or the
// handlers are not net/http's.
func newH2Server(s *Server) (*h2Server, error) {
	o := &s.opts
	if !o.HTTP2 {
		return nil, nil
	}
	if s.handler == nil {
		if o.IsSet("http2") || o.IsSet("h2c") {
			return nil, errors.New("waitron: http2 and h2c are for net/http handlers: the fasthttp adapter serves HTTP/1.1 only")
		}
		return nil, nil
	}
	h := &h2Server{s: s, q: s.disp.newQueue(), conns: map[net.Conn]struct{}{}}
	h.hs = &http.Server{MaxHeaderBytes: o.MaxRequestHeaderSize, IdleTimeout: o.ChannelTimeout,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)}
	h.h2 = &http2.Server{MaxConcurrentStreams: uint32(o.HTTP2MaxConcurrentStreams), IdleTimeout: o.ChannelTimeout,
		WriteByteTimeout: o.SendTimeout}
	if err := http2.ConfigureServer(h.hs, h.h2); err != nil {
		return nil, fmt.Errorf("waitron: http2: %w", err)
	}
	return h, nil
}

// h2Conn is an HTTP/2 connection's socket (a *tls.Conn or a plain one)
// as the HTTP/2 server gets it: with the bytes read before the hand-over
// first.
type h2Conn struct {
	net.Conn
	pre     []byte
	remote  net.Addr    // the client a PROXY protocol header named (nil: the socket's peer)
	port    string      // its local port, for its requests' Info ("" for a unix socket)
	started atomic.Bool // a request has begun: the head timeout is over

	mu      sync.Mutex
	running map[*h2Task]struct{} // its requests whose handlers run, for unblock (a lock per connection, not per server)
}

func (c *h2Conn) RemoteAddr() net.Addr {
	if c.remote != nil {
		return c.remote
	}
	return c.Conn.RemoteAddr()
}

func (c *h2Conn) Read(b []byte) (int, error) {
	if len(c.pre) > 0 {
		n := copy(b, c.pre)
		c.pre = c.pre[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}

// h2TLSConn is an h2Conn over TLS: ConnectionState is how the HTTP/2
// server finds the TLS state (r.TLS, and its checks of the version and
// cipher suite).
type h2TLSConn struct {
	*h2Conn
	tc *tls.Conn
}

func (c h2TLSConn) ConnectionState() tls.ConnectionState { return c.tc.ConnectionState() }

// h2ConnKey finds the h2Conn of a request (its base context).
type h2ConnKey struct{}

// serve serves nc with the HTTP/2 server once its preface has arrived
// (read here, unless sawPreface), holding a slot of g's connection_limit,
// which it gives back. ctx is the connection's base context: its
// listener's (BaseContext), to which ConnContext is applied here, or (h2c)
// the one its event loop made, ConnContext applied already (made). Its own
// goroutine.
func (h *h2Server) serve(nc net.Conn, tc *tls.Conn, pre []byte, sawPreface bool, g *generation, remote net.Addr,
	ctx context.Context, made bool) {
	s := h.s
	c := &h2Conn{Conn: nc, pre: pre, remote: remote}
	if a, ok := nc.LocalAddr().(*net.TCPAddr); ok {
		c.port = strconv.Itoa(a.Port)
	}
	var sc net.Conn = c // what the HTTP/2 server serves
	if tc != nil {
		c.Conn = tc
		sc = h2TLSConn{c, tc}
	}
	h.mu.Lock()
	if s.draining.Load() {
		h.mu.Unlock()
		nc.Close()
		s.release(g)
		return
	}
	h.conns[c] = struct{}{}
	h.wg.Add(1)
	h.mu.Unlock()
	h.open.Add(1)
	defer func() {
		h.mu.Lock()
		delete(h.conns, c)
		h.mu.Unlock()
		c.Close()
		if cs := s.netHTTP.ConnState; cs != nil {
			cs(sc, http.StateClosed) // as net/http's connection does after its HTTP/2 server returns
		}
		h.open.Add(-1)
		reason := CloseClientClosed
		if s.draining.Load() {
			reason = CloseShutdown
		}
		s.closes[reason].Add(1)
		s.release(g)
		h.wg.Done()
	}()
	// The preface, then the first request's head, within
	// request_header_timeout (the first handler lifts the deadline).
	_ = c.SetReadDeadline(time.Now().Add(s.cfg.headTimeout))
	if !sawPreface {
		var buf [len(http2.ClientPreface)]byte
		if _, err := io.ReadFull(c, buf[:]); err != nil || !bytes.Equal(buf[:], h2Preface) {
			s.log.Debug("HTTP/2 connection without its preface in time", "remote", nc.RemoteAddr().String(), "err", err)
			return
		}
	}
	if cs := s.netHTTP.ConnState; cs != nil {
		cs(sc, http.StateNew) // the HTTP/2 server reports the rest, StateClosed last
	}
	if cc := s.netHTTP.ConnContext; cc != nil && !made {
		if ctx = cc(ctx, sc); ctx == nil {
			panic("waitron: ConnContext returned a nil context") // as net/http
		}
	}
	ctx = context.WithValue(ctx, h2ConnKey{}, c)
	h.h2.ServeConn(sc, &http2.ServeConnOpts{Context: ctx, BaseConfig: h.hs, Handler: h, SawClientPreface: true})
}

// handOffH2 hands a connection that opened with the HTTP/2 preface (h2c
// by prior knowledge) to the HTTP/2 server, with rest, the input after
// the preface; its connection_limit slot goes with it. As for a hijack,
// the socket is duplicated and gnet closes its own descriptor. Loop only.
func (c *conn) handOffH2(rest []byte) {
	fd, err := c.gc.Dup()
	if err != nil {
		c.close(CloseInternalError, "cannot hand the connection to HTTP/2: "+err.Error())
		return
	}
	f := os.NewFile(uintptr(fd), "waitron-h2c")
	nc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		c.close(CloseInternalError, "cannot hand the connection to HTTP/2: "+err.Error())
		return
	}
	pre := bytes.Clone(rest)
	c.h2 = true
	c.st.hijack()
	c.e.log.Debug("connection taken by HTTP/2 (h2c)", "remote", c.w.remoteStr)
	_ = c.gc.EventLoop().Close(c.gc) // synchronous: OnClose sees it taken, and counts and releases nothing
	var remote net.Addr
	if c.remote != c.gc.RemoteAddr() {
		remote = c.remote // a PROXY protocol header named it
	}
	c.setState(http.StateHijacked) // for ConnState, the connection the loop had ends here; the HTTP/2 one starts
	go c.e.h2.serve(nc, nil, pre, true, c.w.gen, remote, c.w.ctx, true)
}

// admitH2 takes a connection_limit slot for an HTTP/2 connection that
// never was, or no longer is, on an event loop: false when none is free
// (HTTP/2 connections are refused, not parked). Any goroutine.
func (s *Server) admitH2(g *generation) bool {
	a := &g.adm
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.active < s.cfg.connLimit && len(a.parked) == 0 {
		a.active++
		return true
	}
	return false
}

// shutdown sends GOAWAY on every HTTP/2 connection and waits, until ctx
// ends, for their streams to finish; hard closes them at once.
func (h *h2Server) shutdown(ctx context.Context, hard bool) {
	if h == nil {
		return
	}
	if hard {
		h.mu.Lock()
		for c := range h.conns {
			c.Close()
		}
		h.mu.Unlock()
	} else {
		_ = h.hs.Shutdown(ctx) // runs the HTTP/2 server's graceful shutdown: GOAWAY
	}
	done := make(chan struct{})
	go func() { h.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		h.mu.Lock()
		for c := range h.conns {
			c.Close()
		}
		h.mu.Unlock()
		<-done
	}
}

// ServeHTTP runs a stream's request in one of threads places — here, when
// one is free and nothing waits, else on a worker while it waits — then
// counts and logs the response. The stream's goroutine.
func (h *h2Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := h.s
	hc, _ := r.Context().Value(h2ConnKey{}).(*h2Conn)
	if hc != nil && !hc.started.Swap(true) {
		_ = hc.SetReadDeadline(time.Time{}) // the head timeout ends with the first request
	}
	start := s.clock.stamp()
	x := &h2Exchange{}
	rw, t := &x.w, &x.task
	rw.ResponseWriter = w
	defer func() {
		if rw.status == 0 {
			return
		}
		d := time.Duration(s.clock.stamp() - start)
		s.counts.response(methodIndex([]byte(r.Method)), rw.status, d)
		s.counts.bytesOut.Add(uint64(rw.bytes))
		if s.access != nil {
			s.access.log(&entry{remote: r.RemoteAddr, method: r.Method, target: r.RequestURI, proto: r.Proto,
				status: rw.status, bytes: rw.bytes, dur: d, referer: r.Referer(), agent: r.UserAgent()}, true)
		}
	}()
	if lim := s.cfg.queueLimit; lim > 0 && s.disp.queued() >= lim {
		s.noteShed("queue_limit")
		h2Refuse(rw, http.StatusServiceUnavailable, "Too many requests are waiting for a worker (queue_limit)")
		return
	}
	if r.ContentLength > s.cfg.maxBody {
		h2Refuse(rw, http.StatusRequestEntityTooLarge, "Request body exceeds max_request_body_size")
		return
	}
	x.body = h2Body{ReadCloser: r.Body, left: s.cfg.maxBody, limit: s.cfg.maxBody, stall: s.cfg.bodyTimeout}
	x.body.deadline, _ = w.(readDeadliner)
	r.Body, rw.body = &x.body, &x.body
	port := ""
	if hc != nil {
		port = hc.port
	}
	r2, err := adapter.PrepareHTTP2(&s.acfg, &x.prep, rw, r, h.srv, port)
	if err != nil {
		h2Refuse(rw, http.StatusBadRequest, err.Error())
		return
	}
	*t = h2Task{h: h, w: rw, r: r2, queued: start, conn: hc}
	rw.task = t
	if d := s.disp; d.queued() == 0 && d.rejoin() {
		// A worker's place is free and nothing waits for one: the
		// stream's goroutine takes it and runs the handler itself, as a
		// worker would, without two hand-offs between goroutines.
		wk := workerPool.Get().(*worker)
		*wk = worker{d: d}
		t.run(wk)
		if !wk.detached {
			wk.detach() // leaves the count, and starts a worker if requests came meanwhile
		}
		workerPool.Put(wk)
	} else {
		t.done = make(chan struct{})
		d.push(h.q, t)
		<-t.done
	}
	if t.panicked != nil {
		panic(t.panicked) // the HTTP/2 server's own recovery, as for its own handlers
	}
}

func h2Refuse(w http.ResponseWriter, status int, detail string) {
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	http.Error(w, detail, status)
}

// h2Exchange is what a stream's request needs of waitron's, in one
// allocation.
type h2Exchange struct {
	w    h2Writer
	body h2Body
	task h2Task
	prep adapter.HTTP2State
}

// h2Task is a stream's request as a worker's task.
type h2Task struct {
	h        *h2Server
	w        *h2Writer
	r        *http.Request
	queued   stamp
	done     chan struct{} // closed when it ran on a worker (nil: on the stream's own goroutine)
	panicked any
	mu       sync.Mutex   // wk: the handler may flush from a goroutine of its own
	wk       *worker      // the worker running it, while it runs
	conn     *h2Conn      // its connection
	writing  atomic.Int64 // when the handler's write under way began (a stamp); 0: none
}

func (t *h2Task) run(wk *worker) {
	s := t.h.s
	t.mu.Lock()
	t.wk = wk
	t.mu.Unlock()
	if c := t.conn; c != nil {
		c.mu.Lock()
		if c.running == nil {
			c.running = map[*h2Task]struct{}{}
		}
		c.running[t] = struct{}{}
		c.mu.Unlock()
	}
	defer func() {
		if c := t.conn; c != nil {
			c.mu.Lock()
			delete(c.running, t)
			c.mu.Unlock()
		}
		t.mu.Lock()
		t.wk = nil // after this, drain reads wk.detached
		t.mu.Unlock()
	}()
	defer func() {
		if p := recover(); p != nil {
			t.panicked = p
		}
		if t.done != nil {
			close(t.done)
		}
	}()
	if t.r.Context().Err() != nil {
		return // the stream was reset (or its connection lost) while it waited: nobody is there to answer
	}
	if qt := s.cfg.queueTimeout; qt > 0 && time.Duration(s.clock.stamp()-t.queued) > qt {
		s.noteShed("queue_timeout")
		h2Refuse(t.w, http.StatusServiceUnavailable, "The request waited too long for a worker (queue_timeout)")
		return
	}
	s.handler.ServeHTTP(t.w, t.r)
}

// h2Writer records a stream's status and body bytes for the counters and
// the access log; Unwrap gives http.ResponseController the stream's own
// writer (Flush, deadlines).
//
// A handler that flushes its response while its request is still coming
// (a full-duplex stream: gRPC's bidirectional calls) holds a conversation,
// not an exchange, as a hijacked WebSocket does: like a hijacking
// handler's, its worker then leaves the count of threads, and another
// starts in its place if requests wait. So long-lived streams do not take
// every worker; a stream that reads its whole request first, or that
// never flushes, holds its worker until it returns, as an HTTP/1 handler
// does.
type h2Writer struct {
	http.ResponseWriter
	status int
	bytes  int64
	body   *h2Body
	task   *h2Task
}

// unblock lets the workers go whose handlers have been blocked in a write
// for blockedWrite: their client's flow-control window stays closed (a
// slow or stalled reader). As a handler blocked above
// outbuf_high_watermark does over HTTP/1, the worker leaves the count of
// threads and another starts for the requests waiting, so slow readers
// cannot hold every worker; the handler goes on, outside threads, until
// its write completes or fails (send_timeout). The ticker's goroutine.
func (h *h2Server) unblock(now stamp) {
	if h == nil {
		return
	}
	var conns []*h2Conn
	h.mu.Lock()
	for c := range h.conns {
		conns = append(conns, c.(*h2Conn))
	}
	h.mu.Unlock()
	var blocked []*h2Task
	for _, c := range conns {
		c.mu.Lock()
		for t := range c.running {
			if w := t.writing.Load(); w != 0 && time.Duration(now-stamp(w)) >= blockedWrite {
				blocked = append(blocked, t)
			}
		}
		c.mu.Unlock()
	}
	for _, t := range blocked {
		t.mu.Lock()
		if wk := t.wk; wk != nil && !wk.detached {
			wk.detach()
		}
		t.mu.Unlock()
	}
}

// blockedWrite is how long a handler's write may block before its worker
// leaves the count of threads (unblock; checked every tick, so within a
// second more).
const blockedWrite = time.Second

// h2Body is a stream's request body, bounded by max_request_body_size
// (an *http.MaxBytesError past it, as http.MaxBytesReader gives), whose
// reads fail (os.ErrDeadlineExceeded) once it stalls for
// request_body_timeout; and whether the handler has read it to its end.
//
// The stall is the stream's read deadline, which the HTTP/2 server keeps
// on its own goroutine (each change is a message to it): it is pushed on
// while the handler reads, at most every tenth of the timeout, so a body
// that stalls is cut after between 0.9 and 1 times request_body_timeout.
type h2Body struct {
	io.ReadCloser
	left     int64 // bytes it may still give before max_request_body_size
	limit    int64 // max_request_body_size
	stall    time.Duration
	deadline readDeadliner // the stream's
	renew    time.Time     // when the deadline is next pushed on
	ended    atomic.Bool
}

// readDeadliner is the HTTP/2 server's ResponseWriter's read deadline.
type readDeadliner interface{ SetReadDeadline(time.Time) error }

func (b *h2Body) Read(p []byte) (int, error) {
	if b.deadline != nil {
		if now := time.Now(); now.After(b.renew) {
			_ = b.deadline.SetReadDeadline(now.Add(b.stall))
			b.renew = now.Add(b.stall / 10)
		}
	}
	if b.left < 0 {
		return 0, &http.MaxBytesError{Limit: b.limit}
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1] // one more than allowed tells an overrun
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return n - 1, &http.MaxBytesError{Limit: b.limit}
	}
	if err == io.EOF {
		b.ended.Store(true)
	}
	return n, err
}

func (w *h2Writer) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *h2Writer) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	t := w.task
	if t != nil {
		t.writing.Store(int64(t.h.s.clock.stamp()))
	}
	n, err := w.ResponseWriter.Write(b)
	if t != nil {
		t.writing.Store(0)
	}
	w.bytes += int64(n)
	return n, err
}

func (w *h2Writer) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		if t := w.task; t != nil {
			t.writing.Store(int64(t.h.s.clock.stamp()))
			defer t.writing.Store(0)
		}
		f.Flush()
	}
	if t := w.task; t != nil && w.body != nil && !w.body.ended.Load() {
		t.mu.Lock()
		if wk := t.wk; wk != nil && !wk.detached {
			wk.detach() // a full-duplex stream: see h2Writer
		}
		t.mu.Unlock()
	}
}

func (w *h2Writer) Unwrap() http.ResponseWriter { return w.ResponseWriter }
