// Package engine is the gnet glue: listeners, per-connection state owned by
// the event loops, the dispatch queue and its worker pool, write-back with
// backpressure, and shutdown.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"

	"github.com/waitron/waitron/internal/adapter"
	"github.com/waitron/waitron/limits"
)

// Server serves an http.Handler with waitress's model on gnet event loops.
// Create it with New, run it with Serve, stop it with Shutdown.
type Server struct {
	env                 // what its connections work with (env.go)
	opts limits.Options // read by Serve's setup; the request path reads cfg
	urls []string

	run      atomic.Pointer[engineRun] // the current run of the loops, once they run (onStart): accept loops outlive a run
	booted   gnet.Engine               // the run's engine as OnBoot gave it (the run's goroutine, then its first tick)
	ready    chan struct{}
	readyErr error
	addrs    []net.Addr
	once     sync.Once

	date    atomic.Pointer[[]byte]
	gen     atomic.Pointer[generation] // the current run's requests in flight and closes waiting to drain
	started atomic.Bool                // the current run's first tick has happened
	stopMu  sync.Mutex
	serving bool // Serve was called
	stopped bool
	stopErr error
	locals  sync.Map    // netip.AddrPort → *localAddr
	ops     OpsListener // the metrics_listen listener, set before Ready
	// accessLog is access for ReopenAccessLog, which any goroutine may call.
	accessLog atomic.Pointer[accessLog]
	// bind are the listen addresses (gnet-style URLs) Serve binds, with
	// SO_REUSEPORT under reuse_port; none with the sockets option.
	bind []string
	// tlsBind are tls_listen's addresses, bound by Serve as bind is, and
	// tls is their TLS setup (nil without tls_listen).
	tlsBind []string
	tls     *tlsServer
	tlsLns  map[net.Listener]bool // the listeners whose connections start with a TLS handshake

	sockets        []net.Listener // the listeners, bound by Serve or given (the sockets option)
	onShutdownMu   sync.Mutex
	onShutdown     []func()  // RegisterOnShutdown's
	placeholderDir string    // holds gnet's private listener
	lastSweep      time.Time // OnTick goroutine only
}

// New checks the options, resolves the listen addresses and prepares a
// server for the net/http handler h; nothing listens until Serve.
func New(h http.Handler, o limits.Options, log *slog.Logger) (*Server, error) {
	if h == nil {
		return nil, errors.New("waitron: the handler is nil")
	}
	return newServer(h, Adapter{}, o, log)
}

// Adapter is how the engine hands requests to a kind of handler other
// than net/http's (the fasthttp adapter, adapter/fastadapter, which
// imports the engine: the engine links no handler API but net/http's).
type Adapter struct {
	// Serve runs the handler for x. Worker only.
	Serve func(cfg *adapter.Config, x *adapter.Exchange)
	// Bare says the handlers see no request context and need no net/http
	// state (fasthttp's): connections make no context of their own, and
	// each request carries its connection's and its own arrival times
	// (Exchange.Opened, Received).
	Bare bool
}

// NewFor is New for the handlers a reaches: the same engine, options and
// protections.
func NewFor(a Adapter, o limits.Options, log *slog.Logger) (*Server, error) {
	if a.Serve == nil {
		return nil, errors.New("waitron: the adapter has no Serve")
	}
	return newServer(nil, a, o, log)
}

func newServer(h http.Handler, a Adapter, o limits.Options, log *slog.Logger) (*Server, error) {
	err := o.Validate()
	if err != nil {
		return nil, err
	}
	if o.MetricsListen != "" && opsStarter == nil {
		return nil, errNoOps
	}
	if log == nil {
		log = slog.Default()
	}
	// What Serve binds (bind), or the listeners given (sockets); gnet
	// itself listens only on a placeholder (see sockets.go).
	var bind, sockets = []string(nil), o.Sockets
	if o.SocketsFrom == "systemd" {
		if sockets, err = systemdListeners(); err != nil {
			return nil, err
		}
	}
	switch {
	case len(sockets) > 0:
		if err := checkSockets(sockets); err != nil {
			return nil, err
		}
	case o.UnixSocket != "":
		u, err := unixURL(o.UnixSocket)
		if err != nil {
			return nil, err
		}
		bind = []string{u}
	default:
		if bind, err = listenURLs(context.Background(), o.ListenAddrs(), o.Port, o.IPv4, o.IPv6); err != nil {
			return nil, err
		}
	}
	var tlsBind []string
	if len(o.TLSListen) > 0 {
		if tlsBind, err = listenURLs(context.Background(), o.TLSListen, o.Port, o.IPv4, o.IPv6); err != nil {
			return nil, fmt.Errorf("waitron: tls_listen: %w", err)
		}
	}
	tlsSrv, err := newTLSServer(&o, log)
	if err != nil {
		return nil, err
	}
	spoolDir, err := checkSpoolDir(o.SpoolDir)
	if err != nil {
		return nil, err
	}
	placeholder, placeholderDir, err := placeholderURL()
	if err != nil {
		return nil, err
	}
	proxy, err := adapter.NewProxy(o.TrustedProxy, o.TrustedProxyCount, o.TrustedProxyHeaders,
		o.ClearUntrustedProxyHeaders, o.LogUntrustedProxyHeaders)
	if err != nil {
		return nil, err
	}
	disp, err := newDispatcher(o.Threads)
	if err != nil {
		return nil, err
	}
	s := &Server{env: env{cfg: compile(&o), handler: h, serveX: a.Serve, bare: a.Bare, log: log, disp: disp, tmpDir: spoolDir},
		opts: o, urls: []string{placeholder}, ready: make(chan struct{}), sockets: sockets, bind: bind,
		placeholderDir: placeholderDir, tlsBind: tlsBind, tls: tlsSrv}
	s.baseCtx = context.WithValue(context.Background(), http.ServerContextKey, describe(h, &o))
	if s.h2, err = newH2Server(s); err != nil {
		return nil, err
	}
	if s.h2 != nil && s.tls != nil {
		s.tls.cfg.NextProtos = []string{"h2", "http/1.1"}
	}
	s.cfg.h2c = s.h2 != nil && o.H2C
	s.refreshDate()
	s.files = newFileCache(s.tmpDir, &s.clock)
	s.acfg = adapter.Config{
		Ident:            o.Ident,
		ExposeTracebacks: o.ExposeTracebacks,
		Log:              log,
		AppendDate:       func(b []byte) []byte { return append(b, *s.date.Load()...) },
		Draining:         s.draining.Load,
		NoKeepAlive:      s.noKeepAlive.Load,
		LogRequests:      o.AccessLog != "",
		URLScheme:        o.URLScheme,
		TLSScheme:        tlsScheme(&o),
		ServerName:       o.ServerName,
		URLPrefix:        o.URLPrefix,
		SendBytes:        o.SendBytes,
		Proxy:            proxy,
	}
	return s, nil
}

// describe returns the *http.Server that handlers find under
// http.ServerContextKey (pprof, for one, reads its WriteTimeout): what of
// the options net/http has names for. It never serves; ReadTimeout and
// WriteTimeout stay zero, since no option bounds a whole request's read or
// a whole response's write (request_body_timeout and send_timeout bound
// stalls, not totals).
func describe(h http.Handler, o *limits.Options) *http.Server {
	addr := ""
	if o.UnixSocket == "" && len(o.Sockets) == 0 && o.SocketsFrom == "" {
		if a := o.ListenAddrs(); len(a) > 0 {
			addr = a[0]
		}
	}
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: o.RequestHeaderTimeout,
		IdleTimeout:       o.ChannelTimeout,
		MaxHeaderBytes:    o.MaxRequestHeaderSize,
	}
}

// notes logs what the compatibility options mean here when they are set.
func (s *Server) notes() {
	if s.opts.IsSet("asyncore_use_poll") {
		s.log.Info("note: asyncore_use_poll has no effect: gnet always uses epoll, which has no select() descriptor limit")
	}
	if s.opts.IsSet("asyncore_loop_timeout") {
		s.log.Info("note: asyncore_loop_timeout sets how often maintenance may run here: idle connections are looked for at most every max(cleanup_interval, asyncore_loop_timeout) seconds",
			"asyncore_loop_timeout", s.opts.AsyncoreLoopTimeout)
	}
	if s.opts.IsSet("channel_request_lookahead") {
		s.log.Info("note: channel_request_lookahead has no effect: a client's close always cancels its request's context, one request is always read ahead, and pipelined input is bounded in bytes",
			"channel_request_lookahead", s.opts.ChannelRequestLookahead)
	}
	if s.opts.TrustedProxy != "" && len(s.opts.TrustedProxyHeaders) == 0 {
		s.log.Warn("trusted_proxy is set without trusted_proxy_headers: only X-Forwarded-Proto is trusted (as in waitress); name the headers to trust")
	}
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err == nil {
		// Clients served and waiting, a spool file for each request body and
		// response, and a margin for listeners and the runtime.
		need := uint64(s.opts.ConnectionLimit)*3 + uint64(s.opts.Backlog) + 64
		if lim.Cur < need {
			s.log.Warn("the open-file limit is below what connection_limit and backlog may need; a connection flood can exhaust it (accepting then pauses until descriptors are free)",
				"limit", lim.Cur, "may_need", need)
		}
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(s.tmpDir, &fs); err == nil {
		free := int64(fs.Bavail) * fs.Bsize
		if free < s.opts.MaxRequestBodySize {
			s.log.Warn("the spool directory cannot hold one request body of max_request_body_size; a body that does not fit is answered 500",
				"spool_dir", s.tmpDir, "free_bytes", free, "max_request_body_size", s.opts.MaxRequestBodySize)
		} else {
			s.log.Debug("spool directory", "spool_dir", s.tmpDir, "free_bytes", free)
		}
	}
	if s.opts.IsSet("send_bytes") {
		s.log.Info("note: send_bytes is the size of the pieces responses are handed over in; output up to it gets a Content-Length",
			"send_bytes", s.opts.SendBytes)
	}
}

// checkSpoolDir returns the directory for spool files (spool_dir, or the
// system's temporary directory) once a file could be made there.
func checkSpoolDir(dir string) (string, error) {
	if dir == "" {
		dir = os.TempDir()
	}
	f, err := os.CreateTemp(dir, "waitron-check-*")
	if err != nil {
		return "", fmt.Errorf("waitron: spool_dir: %w", err)
	}
	f.Close()
	os.Remove(f.Name())
	return dir, nil
}

// tlsScheme is the URL scheme of requests over TLS: https, unless
// url_scheme says otherwise.
func tlsScheme(o *limits.Options) string {
	if o.IsSet("url_scheme") {
		return o.URLScheme
	}
	return "https"
}
