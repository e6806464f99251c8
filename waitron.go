// Package waitron serves ordinary net/http handlers with Python waitress's
// serving model: gnet event loops do all socket I/O, requests are read in
// full by a strict HTTP/1.x codec (bodies past inbuf_overflow spooled to a
// temporary file) before the handler runs, and a pool of Options.Threads
// workers runs the handlers.
//
// A program that builds an *http.Server swaps one line:
//
//	srv := &http.Server{Addr: ":8080", Handler: mux, ReadHeaderTimeout: 5 * time.Second}
//	ws, err := waitron.FromHTTPServer(srv, nil) // nil: waitress's defaults for the rest
//	if err != nil {
//		log.Fatal(err)
//	}
//	go func() {
//		if err := ws.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
//			log.Fatal(err)
//		}
//	}()
//	<-ctx.Done() // SIGTERM
//	ws.Shutdown(context.Background())
//
// ListenAndServe(srv) is the shortest form. NewServer takes waitress's
// options instead of an *http.Server. fasthttp handlers are served by
// package adapter/fastadapter's NewServer, so that a program of net/http
// handlers links no fasthttp.
package waitron

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"strconv"
	"sync"
	"time"

	"github.com/waitron/waitron/internal/adapter"
	"github.com/waitron/waitron/internal/engine"
	"github.com/waitron/waitron/internal/serverkit"
	"github.com/waitron/waitron/limits"
)

// Server is a waitron server. Its lifecycle is net/http's *http.Server's
// (ListenAndServe, Serve, Shutdown, Close, RegisterOnShutdown,
// SetKeepAlivesEnabled), so a program can swap one for the other; Ready,
// Addrs, Stats and ReopenAccessLog are waitron's own.
type Server struct {
	e *engine.Server
}

func init() { serverkit.Wrap = func(e *engine.Server) any { return &Server{e: e} } }

// Options are waitress's options (and waitron's own), one field each;
// DefaultOptions returns their defaults.
type Options = limits.Options

// DefaultOptions returns waitress's defaults.
func DefaultOptions() Options { return limits.Default() }

// ListenAndServe listens on the options' addresses (listen, host and
// port, unix_socket or sockets) and serves until Shutdown or Close; it
// then returns http.ErrServerClosed, or an error if listening failed.
func (s *Server) ListenAndServe() error { return s.e.ListenAndServe() }

// Serve serves the connections ln accepts, instead of the options'
// addresses, until Shutdown or Close (which close ln); it then returns
// http.ErrServerClosed. ln must be a TCP or UNIX stream listener.
func (s *Server) Serve(ln net.Listener) error { return s.e.Serve(ln) }

// ServeTLS serves ln's connections over TLS, as net/http's ServeTLS: with
// the pair of certFile and keyFile, or (both empty) the options' certfile
// and keyfile or TLSConfig; HTTP/2 is offered by ALPN.
func (s *Server) ServeTLS(ln net.Listener, certFile, keyFile string) error {
	return s.e.ServeTLS(ln, certFile, keyFile)
}

// Shutdown stops accepting connections, stops reading new requests, lets
// every request already being served finish and its response drain, then
// stops. RegisterOnShutdown's functions start as it begins. If ctx ends
// first, the remaining connections are closed and ctx's error returned.
func (s *Server) Shutdown(ctx context.Context) error { return s.e.Shutdown(ctx) }

// Close closes the listeners and every connection at once, without
// waiting for the requests in flight.
func (s *Server) Close() error { return s.e.Close() }

// RegisterOnShutdown adds f to the functions Shutdown starts, each on a
// goroutine of its own, as it begins: to tell hijacked connections (a
// WebSocket's), which Shutdown neither waits for nor closes, to end.
func (s *Server) RegisterOnShutdown(f func()) { s.e.RegisterOnShutdown(f) }

// SetKeepAlivesEnabled turns keep-alive on (the default) or off: off,
// every response says Connection: close and its connection closes after
// it.
func (s *Server) SetKeepAlivesEnabled(v bool) { s.e.SetKeepAlivesEnabled(v) }

// Ready is closed once the server listens (or failed to start: see
// ReadyErr).
func (s *Server) Ready() <-chan struct{} { return s.e.Ready() }

// ReadyErr waits for Ready and returns why the server could not start, or
// nil.
func (s *Server) ReadyErr() error { return s.e.ReadyErr() }

// Addrs waits for Ready and returns the addresses the server listens on.
func (s *Server) Addrs() []net.Addr { return s.e.Addrs() }

// Stats returns a snapshot of the server's counters.
func (s *Server) Stats() Stats { return statsOf(s.e.Stats()) }

// Conns returns the number of open client connections.
func (s *Server) Conns() int64 { return s.e.Conns() }

// ReopenAccessLog writes what is pending to the access log, then opens
// its path again (what a process does on SIGHUP after logrotate moved the
// file away). A no-op without an access log.
func (s *Server) ReopenAccessLog() error { return s.e.ReopenAccessLog() }

// ReloadTLS reads certfile and keyfile again (the server also does when
// either file changes): new handshakes get the new pair, open connections
// keep theirs. When the files do not load, the pair served stays, and the
// error (also logged) says why. Without certfile it does nothing.
func (s *Server) ReloadTLS() error { return s.e.ReloadTLS() }

// Stats is a snapshot of a server's counters and gauges (Server.Stats).
type Stats struct {
	// Open is the number of client connections open now, parked ones
	// included (hijacked ones have left); Parked, those waiting unread for
	// a slot under connection_limit.
	Open, Parked int64
	// Running is the number of workers running handlers now (hijacked
	// handlers not counted), Queued the requests waiting for one
	// (waitress's "task queue depth").
	Running, Queued int
	// WritesBlocked is the number of handlers blocked now in a Write
	// because their connection has more than outbuf_high_watermark bytes
	// pending (a client reading slower than they write).
	WritesBlocked int64
	// Draining is true from the moment Shutdown starts.
	Draining bool
	// Closed counts the connections closed, by reason.
	Closed map[CloseReason]uint64
	// Requests counts responses by method and status class.
	Requests []RequestCount
	// Durations counts responses by how long they took from the request
	// being complete to the response handed over, in the buckets of
	// DurationBuckets (the last: longer than every bound); DurationSum is
	// their total.
	Durations   []uint64
	DurationSum time.Duration
	// BytesIn and BytesOut count bytes read from and handed to clients.
	BytesIn, BytesOut uint64
	// Restarts counts the event loops' restarts after they stopped on
	// their own (a failure inside gnet).
	Restarts uint64
	// AcceptErrors counts accepts that failed (EMFILE, ENFILE, ENOBUFS …):
	// each pauses its listener; open connections are untouched.
	AcceptErrors uint64
	// SpooledBodies and SpooledBodyBytes count request bodies spooled to a
	// file (inbuf_overflow) and their bytes; SpooledOutputs and
	// SpooledOutputBytes, responses whose output overflowed to a file
	// (outbuf_overflow) and the bytes that went through it.
	SpooledBodies, SpooledBodyBytes, SpooledOutputs, SpooledOutputBytes uint64
	// SentFromFile counts response bytes that went from a file to the
	// socket with sendfile(2): a spooled request body's (a handler copying
	// the body into a response of declared length, as an echo or a proxy)
	// or a regular file a handler copied into one (http.ServeFile).
	SentFromFile uint64
	// Shed counts requests answered 503 without running their handler
	// because the server was full (queue_limit, queue_timeout).
	Shed uint64
}

// RequestCount is a count of responses to one method in one status class.
type RequestCount struct {
	Method      string // GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH, CONNECT, TRACE or other
	StatusClass string // 1xx … 5xx
	Count       uint64
}

// statsOf is the engine's snapshot as the root's type.
func statsOf(st engine.Stats) Stats {
	out := Stats{
		Open: st.Open, Parked: st.Parked, Running: st.Running, Queued: st.Queued,
		WritesBlocked: st.WritesBlocked, Draining: st.Draining,
		Closed:    make(map[CloseReason]uint64, len(st.Closed)),
		Requests:  make([]RequestCount, len(st.Requests)),
		Durations: st.Durations, DurationSum: st.DurationSum,
		BytesIn: st.BytesIn, BytesOut: st.BytesOut, Restarts: st.Restarts, AcceptErrors: st.AcceptErrors,
		SpooledBodies: st.SpooledBodies, SpooledBodyBytes: st.SpooledBodyBytes,
		SpooledOutputs: st.SpooledOutputs, SpooledOutputBytes: st.SpooledOutputBytes,
		SentFromFile: st.SentFromFile, Shed: st.Shed,
	}
	for r, n := range st.Closed {
		out.Closed[CloseReason(r)] = n
	}
	for i, c := range st.Requests {
		out.Requests[i] = RequestCount(c)
	}
	return out
}

// CloseReason is why a client connection closed; Stats counts them, and
// the access log, the debug log and the metrics name them by String.
type CloseReason uint8

// String returns the reason's name, as logs and metric labels show it
// (client_closed, bad_request, …).
func (r CloseReason) String() string { return engine.CloseReason(r).String() }

// The close reasons, described in docs/security.md, in the engine's order.
const (
	// CloseClientClosed: the client closed its connection (EOF) with
	// nothing in flight.
	CloseClientClosed CloseReason = iota
	// CloseClientReset: a socket error, such as a reset or a broken pipe.
	CloseClientReset
	// CloseClientHalfClosed: the client half-closed; every complete
	// request it sent was answered first.
	CloseClientHalfClosed
	// CloseRequested: the request or the response asked to close
	// (Connection: close, HTTP/1.0 without keep-alive, a close-delimited
	// body).
	CloseRequested
	// CloseBadRequest: a protocol error, answered with its 4xx or 5xx.
	CloseBadRequest
	// CloseIdle: idle for channel_timeout.
	CloseIdle
	// CloseHeaderTimeout: the head was not complete within
	// request_header_timeout.
	CloseHeaderTimeout
	// CloseBodyTimeout: the body stalled for request_body_timeout, or came
	// slower than request_body_min_rate.
	CloseBodyTimeout
	// CloseSendTimeout: the client took no response bytes for
	// send_timeout, or a write deadline passed.
	CloseSendTimeout
	// ClosePipelineOverflow: more input was sent ahead than the server
	// holds (max_request_header_size + inbuf_overflow).
	ClosePipelineOverflow
	// CloseOverload: refused or timed out over connection_limit (503).
	CloseOverload
	// CloseShutdown: the server is shutting down.
	CloseShutdown
	// CloseHijacked: the handler took the connection (http.Hijacker).
	CloseHijacked
	// CloseProxyProtocol: a PROXY protocol header that was malformed,
	// too long, or from a peer not in trusted_proxy.
	CloseProxyProtocol
	// CloseInternalError: waitron's own failure (a spool file that could
	// not be read back, a bug caught on the event loop).
	CloseInternalError
	// CloseSpoolFull: response output over outbuf_overflow could not be
	// written to its spool file (spool_dir full, most often).
	CloseSpoolFull
	// CloseServerRestart: the event loops stopped on their own (a failure
	// inside gnet) and closed every connection; Serve starts them again.
	CloseServerRestart
	// CloseTLSHandshake: the TLS handshake failed (not TLS, no protocol
	// or cipher in common, a client certificate refused under client_ca).
	CloseTLSHandshake
	// CloseTLSHandshakeTimeout: the TLS handshake did not complete within
	// tls_handshake_timeout.
	CloseTLSHandshakeTimeout
	// CloseTLSError: a TLS record that does not decrypt, or an alert from
	// the client.
	CloseTLSError
	// CloseTLSCloseNotify: the client's TLS close_notify; the response in
	// flight was sent first.
	CloseTLSCloseNotify
	// CloseTLSRenegotiation: the client tried to renegotiate, or sent
	// another handshake message waitron does not take after the handshake.
	CloseTLSRenegotiation
)

// DurationBuckets are the upper bounds, in seconds, of the request
// durations Stats counts (Stats.Durations has one more: the overflow).
var DurationBuckets = engine.DurationBuckets

// ErrClientGone is what a ResponseWriter's Write returns once the client
// can no longer receive the response.
var ErrClientGone = adapter.ErrClientGone

// ErrWriteAfterReturn is returned by a ResponseWriter's Write and Flush
// once its handler has returned.
var ErrWriteAfterReturn = adapter.ErrWriteAfterReturn

// ErrWriteDeadline is returned by a write past the deadline set with
// http.ResponseController's SetWriteDeadline (or WriteTimeout); it is
// os.ErrDeadlineExceeded to errors.Is.
var ErrWriteDeadline = adapter.ErrWriteDeadline

// Info is what a handler can learn beyond *http.Request (waitress's WSGI
// environ keys that net/http has no place for).
type Info struct {
	// Scheme is url_scheme ("http" by default; "https" over TLS unless
	// url_scheme is set), or the scheme a trusted proxy reported.
	Scheme string
	// ServerName is server_name, or the host a trusted proxy reported.
	ServerName string
	// ServerPort is the port the request reached ("" on a unix socket), or
	// the port a trusted proxy reported.
	ServerPort string
	// ScriptName is url_prefix when the request path started with it (and
	// was stripped from r.URL.Path), else "".
	ScriptName string
	// PeerAddr is the address of the socket peer, before any trusted proxy
	// header replaced r.RemoteAddr.
	PeerAddr string
}

// RequestInfo returns the Info of a request served by waitron (false for
// requests from another server).
func RequestInfo(r *http.Request) (Info, bool) {
	i, ok := adapter.RequestInfo(r)
	return Info(i), ok
}

// NewServer validates opts and prepares a server for h that logs to log
// (slog.Default() when nil). Call ListenAndServe to run it and Shutdown to
// stop it.
func NewServer(h http.Handler, opts Options, log *slog.Logger) (*Server, error) {
	e, err := engine.New(h, opts, log)
	if err != nil {
		return nil, err
	}
	return &Server{e: e}, nil
}

// Serve runs h with opts until the server stops, like
// waitress.serve(app, **kw); it returns an error if the options are
// invalid or serving failed, and http.ErrServerClosed once stopped.
func Serve(h http.Handler, opts Options) error {
	s, err := NewServer(h, opts, nil)
	if err != nil {
		return err
	}
	return s.ListenAndServe()
}

// ListenAndServe serves srv's handler with waitron, as srv.ListenAndServe
// would with net/http: FromHTTPServer(srv, nil), then ListenAndServe. srv
// never accepts a connection itself, but it is told of one listener of
// waitron's (srv's BaseContext is called for it too), so srv.Shutdown(ctx)
// and srv.Close() reach waitron: either starts waitron's graceful
// shutdown, and srv.Shutdown returns once the requests in flight have
// been answered and their responses drained. net/http gives a listener no
// way to see ctx or to tell Close from Shutdown, so both wait for the
// drain, however long it takes; a program that must stop at a deadline or
// at once uses FromHTTPServer and the Server's own Shutdown and Close.
// This call returns http.ErrServerClosed once the drain is done.
func ListenAndServe(srv *http.Server) error {
	s, err := FromHTTPServer(srv, nil)
	if err != nil {
		return err
	}
	return serveGated(s, srv)
}

// ListenAndServeTLS serves srv's handler over TLS with waitron, as
// srv.ListenAndServeTLS(certFile, keyFile) would with net/http:
// FromHTTPServerTLS(srv, certFile, keyFile, nil), then ListenAndServe,
// with srv.Shutdown and srv.Close reaching waitron as ListenAndServe says.
func ListenAndServeTLS(srv *http.Server, certFile, keyFile string) error {
	s, err := FromHTTPServerTLS(srv, certFile, keyFile, nil)
	if err != nil {
		return err
	}
	return serveGated(s, srv)
}

// serveGated serves s until it stops, with srv told of the shutdownGate.
func serveGated(s *Server, srv *http.Server) error {
	served := make(chan error, 1)
	go func() { served <- s.ListenAndServe() }()
	if s.ReadyErr() != nil {
		return <-served
	}
	g := &shutdownGate{s: s, drained: make(chan struct{}), ended: make(chan struct{})}
	gated := make(chan struct{})
	go func() {
		defer close(gated)
		_ = srv.Serve(g)
		// srv was shut down before it saw g, or g ended: either way
		// waitron stops too (a no-op once it has).
		_ = s.Shutdown(context.Background())
	}()
	err := <-served
	close(g.ended)
	<-gated
	g.once.Do(func() { close(g.drained) }) // Close never ran: none to wait for
	<-g.drained
	return err
}

// shutdownGate is the listener ListenAndServe gives srv.Serve: it accepts
// nothing; its Close (from srv.Shutdown or srv.Close) starts the waitron
// server's shutdown, and Accept returns once that is done, since
// srv.Shutdown waits for srv.Serve to return.
type shutdownGate struct {
	s       *Server
	once    sync.Once
	drained chan struct{} // the shutdown Close started is done
	ended   chan struct{} // the waitron server has stopped
}

func (g *shutdownGate) Accept() (net.Conn, error) {
	select {
	case <-g.drained:
	case <-g.ended:
	}
	return nil, net.ErrClosed
}

func (g *shutdownGate) Close() error {
	g.once.Do(func() {
		go func() {
			_ = g.s.Shutdown(context.Background())
			close(g.drained)
		}()
	})
	return nil
}

func (g *shutdownGate) Addr() net.Addr {
	if a := g.s.Addrs(); len(a) > 0 {
		return a[0]
	}
	return &net.TCPAddr{}
}

// FromHTTPServer returns a waitron Server for srv's handler, configured
// by srv's fields and, for the rest, by opts (nil: waitress's defaults).
// Every field is honoured, or refused with an error naming it:
//
//   - Addr: the address to listen on (":http" when empty, as net/http),
//     unless opts say where to listen (listen, host, port, unix_socket,
//     sockets); both: an error. Handler: nil is http.DefaultServeMux.
//   - A field and the option it sets, both given: an error.
//   - ReadHeaderTimeout: request_header_timeout. ReadTimeout:
//     request_body_timeout, and request_header_timeout unless
//     ReadHeaderTimeout is set. IdleTimeout (else ReadTimeout):
//     channel_timeout. WriteTimeout: each response's write deadline from
//     when its handler starts. waitron's timeouts are whole seconds, at
//     least one: a shorter or fractional one is refused. A zero timeout
//     leaves waitron's default (which is bounded: waitron has no
//     unbounded wait).
//   - MaxHeaderBytes: max_request_header_size (0: waitron's default).
//   - ErrorLog: the server's log lines, written through it.
//   - ConnState, BaseContext, ConnContext, DisableGeneralOptionsHandler:
//     as net/http; handlers find srv under http.ServerContextKey.
//   - TLSConfig: refused here, where net/http would not use it (its
//     ListenAndServe serves plain HTTP); FromHTTPServerTLS uses it.
//   - Protocols: HTTP2 is the http2 option (HTTP/2 by ALPN over TLS,
//     net/http's default), UnencryptedHTTP2 the h2c option (off unless
//     asked, as net/http); Protocols without HTTP1 is refused.
//     HTTP2.MaxConcurrentStreams is http2_max_concurrent_streams; any other
//     HTTP2 field, and a non-empty TLSNextProto, is refused.
func FromHTTPServer(srv *http.Server, opts *Options) (*Server, error) {
	if srv != nil && srv.TLSConfig != nil {
		return nil, errors.New("waitron: http.Server.TLSConfig is set: serve it with ListenAndServeTLS or FromHTTPServerTLS (net/http's ListenAndServe would not use it)")
	}
	return fromHTTPServer(srv, opts, nil)
}

// FromHTTPServerTLS is FromHTTPServer for serving over TLS, as
// srv.ListenAndServeTLS(certFile, keyFile) would: Addr (":https" when
// empty) is the tls_listen address, certFile and keyFile the certfile
// and keyfile (both empty: srv.TLSConfig must hold the certificates), and
// srv.TLSConfig, if set, the TLS configuration (Options.TLSConfig).
func FromHTTPServerTLS(srv *http.Server, certFile, keyFile string, opts *Options) (*Server, error) {
	return fromHTTPServer(srv, opts, &[2]string{certFile, keyFile})
}

func fromHTTPServer(srv *http.Server, opts *Options, tlsFiles *[2]string) (*Server, error) {
	if srv == nil {
		return nil, errors.New("waitron: FromHTTPServer: srv is nil")
	}
	o := limits.Default()
	if opts != nil {
		o = opts.Clone() // the caller's opts stay as they were
	}
	// Where opts and srv both set something, it is an error, not a
	// precedence rule.
	given := func(names ...string) string {
		for _, n := range names {
			if opts != nil && opts.IsSet(n) {
				return n
			}
		}
		return ""
	}
	if err := applyProtocols(srv, &o, given); err != nil {
		return nil, err
	}
	listenOpt, defaultAddr := "listen", ":http"
	if tlsFiles != nil {
		listenOpt, defaultAddr = "tls_listen", ":https"
		for i, name := range []string{"certfile", "keyfile"} {
			if tlsFiles[i] == "" {
				continue
			}
			if given(name) != "" {
				return nil, fmt.Errorf("waitron: the %s argument and the options' %s both set it", name, name)
			}
			if err := o.Set(name, tlsFiles[i]); err != nil {
				return nil, err
			}
		}
		if srv.TLSConfig != nil {
			if o.TLSConfig != nil {
				return nil, errors.New("waitron: http.Server.TLSConfig and the options' TLSConfig both set it")
			}
			o.TLSConfig = srv.TLSConfig
		}
	}
	if where := given(listenOpt, "host", "port", "unix_socket", "sockets"); where != "" {
		if srv.Addr != "" {
			return nil, fmt.Errorf("waitron: http.Server.Addr %q and the options' %s both say where to listen", srv.Addr, where)
		}
	} else {
		addr, err := listenAddr(srv.Addr, defaultAddr)
		if err != nil {
			return nil, err
		}
		if err := o.Set(listenOpt, addr); err != nil {
			return nil, fmt.Errorf("waitron: http.Server.Addr %q: %w", srv.Addr, err)
		}
	}
	for _, t := range []struct {
		field, opt string
		d          time.Duration
	}{
		{"ReadTimeout", "request_body_timeout", srv.ReadTimeout},
		{"ReadTimeout", "request_header_timeout", srv.ReadTimeout},
		{"ReadTimeout", "channel_timeout", srv.ReadTimeout},
		{"ReadHeaderTimeout", "request_header_timeout", srv.ReadHeaderTimeout},
		{"IdleTimeout", "channel_timeout", srv.IdleTimeout},
	} {
		if t.d == 0 {
			continue
		}
		if t.d < time.Second || t.d%time.Second != 0 {
			return nil, fmt.Errorf("waitron: http.Server.%s %v: waitron's %s is whole seconds, at least 1", t.field, t.d, t.opt)
		}
		if given(t.opt) != "" {
			return nil, fmt.Errorf("waitron: http.Server.%s and the options' %s both set it", t.field, t.opt)
		}
		if err := o.Set(t.opt, strconv.FormatInt(int64(t.d/time.Second), 10)); err != nil {
			return nil, fmt.Errorf("waitron: http.Server.%s: %w", t.field, err)
		}
	}
	if srv.WriteTimeout < 0 {
		return nil, errors.New("waitron: http.Server.WriteTimeout is negative")
	}
	if srv.MaxHeaderBytes > 0 {
		if given("max_request_header_size") != "" {
			return nil, errors.New("waitron: http.Server.MaxHeaderBytes and the options' max_request_header_size both set it")
		}
		if err := o.Set("max_request_header_size", strconv.Itoa(srv.MaxHeaderBytes)); err != nil {
			return nil, fmt.Errorf("waitron: http.Server.MaxHeaderBytes: %w", err)
		}
	}
	h := srv.Handler
	if h == nil {
		h = http.DefaultServeMux
	}
	var lg *slog.Logger
	if srv.ErrorLog != nil {
		// Warnings and errors, as net/http's ErrorLog gets; its logger
		// stamps the time.
		lg = slog.New(slog.NewTextHandler(logWriter{srv.ErrorLog}, &slog.HandlerOptions{Level: slog.LevelWarn,
			ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
				if a.Key == slog.TimeKey && len(groups) == 0 {
					return slog.Attr{}
				}
				return a
			}}))
	}
	e, err := engine.New(h, o, lg)
	if err != nil {
		return nil, err
	}
	if err := e.SetNetHTTP(engine.NetHTTP{
		ConnState: srv.ConnState, BaseContext: srv.BaseContext, ConnContext: srv.ConnContext, Server: srv,
		WriteTimeout: srv.WriteTimeout, DisableGeneralOptionsHandler: srv.DisableGeneralOptionsHandler,
	}); err != nil {
		return nil, err
	}
	return &Server{e: e}, nil
}

// applyProtocols maps srv's Protocols and HTTP2 to the http2, h2c and
// http2_max_concurrent_streams options: as net/http, HTTP/2 is offered by
// ALPN over TLS, and h2c only when Protocols asks for it.
func applyProtocols(srv *http.Server, o *Options, given func(names ...string) string) error {
	if len(srv.TLSNextProto) > 0 {
		return errors.New("waitron: http.Server.TLSNextProto: waitron serves HTTP/1 and HTTP/2 itself and takes no other ALPN protocol handlers")
	}
	h2, h2c := true, false // net/http's defaults
	if p := srv.Protocols; p != nil {
		switch {
		case !p.HTTP1():
			return fmt.Errorf("waitron: http.Server.Protocols %v: waitron always serves HTTP/1", p)
		case p.UnencryptedHTTP2() && !p.HTTP2():
			return fmt.Errorf("waitron: http.Server.Protocols %v: waitron takes unencrypted HTTP/2 only beside HTTP/2 over TLS", p)
		}
		h2, h2c = p.HTTP2(), p.UnencryptedHTTP2()
	}
	for _, s := range []struct {
		name string
		v    bool
	}{{"http2", h2}, {"h2c", h2c}} {
		if given(s.name) != "" {
			if srv.Protocols != nil {
				return fmt.Errorf("waitron: http.Server.Protocols and the options' %s both set it", s.name)
			}
			continue // the options say
		}
		if err := o.Set(s.name, strconv.FormatBool(s.v)); err != nil {
			return err
		}
	}
	if c := srv.HTTP2; c != nil {
		rest := *c
		rest.MaxConcurrentStreams = 0
		if !reflect.ValueOf(rest).IsZero() {
			return errors.New("waitron: http.Server.HTTP2: only MaxConcurrentStreams is taken (http2_max_concurrent_streams); Go's HTTP/2 defaults stand for the rest")
		}
		if c.MaxConcurrentStreams > 0 {
			if given("http2_max_concurrent_streams") != "" {
				return errors.New("waitron: http.Server.HTTP2.MaxConcurrentStreams and the options' http2_max_concurrent_streams both set it")
			}
			if err := o.Set("http2_max_concurrent_streams", strconv.Itoa(c.MaxConcurrentStreams)); err != nil {
				return fmt.Errorf("waitron: http.Server.HTTP2.MaxConcurrentStreams: %w", err)
			}
		}
	}
	return nil
}

// listenAddr turns an http.Server's Addr into a listen address: empty is
// def (":http" or ":https"), as net/http; a service name for the port
// becomes its number.
func listenAddr(addr, def string) (string, error) {
	if addr == "" {
		addr = def
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("waitron: http.Server.Addr %q: %w", addr, err)
	}
	n, err := net.LookupPort("tcp", port)
	if err != nil {
		return "", fmt.Errorf("waitron: http.Server.Addr %q: %w", addr, err)
	}
	return net.JoinHostPort(host, strconv.Itoa(n)), nil // an empty host: every address of both families, as net/http
}

// logWriter writes slog's lines through a *log.Logger (ErrorLog).
type logWriter struct{ l *log.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	if err := w.l.Output(2, string(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}
