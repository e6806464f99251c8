// Package engine is the gnet glue: listeners, per-connection state owned by
// the event loops, the dispatch queue and its worker pool, write-back with
// backpressure, and shutdown.
package engine

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/valyala/fasthttp"
	"golang.org/x/sys/unix"

	"github.com/waitron/waitron/adapter"
	"github.com/waitron/waitron/codec"
	"github.com/waitron/waitron/internal/ops"
	"github.com/waitron/waitron/limits"
)

// Server serves an http.Handler with waitress's model on gnet event loops.
// Create it with New, run it with Serve, stop it with Shutdown.
type Server struct {
	opts    limits.Options // read by Serve's setup; the request path reads cfg
	cfg     config
	clock   clock
	handler http.Handler            // the net/http handler, or nil…
	fast    fasthttp.RequestHandler // …the fasthttp one
	log     *slog.Logger
	acfg    adapter.Config
	disp    *dispatcher
	urls    []string

	eng      gnet.Engine
	ready    chan struct{}
	readyErr error
	addrs    []net.Addr
	once     sync.Once

	date     atomic.Pointer[[]byte]
	draining atomic.Bool
	stopping atomic.Bool
	// hooks are set by tests before Serve (export_test.go) and only read
	// after: the request path pays a plain load for them.
	hooks struct {
		// noTickCollect keeps the per-second checks from collecting the
		// responses workers wrote themselves (see conn.collect), to show
		// that the prompt paths need no tick.
		noTickCollect bool
		// directWritten runs between a worker's direct write of a response
		// and its telling the loop, to widen that window.
		directWritten func()
		// dispatching runs on the loop as a complete request is about to
		// be handed over (a test's panic there stands in for a loop-side
		// bug).
		dispatching func()
		// drainReport, when set, is how often Shutdown reports what it
		// waits for instead of the constant's 10 s, so a test sees the
		// report without waiting for it.
		drainReport time.Duration
	}
	// yieldToWorkers is set by Serve when there are no more Ps than event
	// loops: a loop then yields its P to the workers after a hand-off, or
	// after several (loopConns.yieldAfter).
	yieldToWorkers bool
	loopsGone      atomic.Bool                // gnet has returned: no Async*/Close/Execute calls any more
	gen            atomic.Pointer[generation] // the current run's requests in flight and closes waiting to drain
	started        atomic.Bool                // the current run's first tick has happened
	stopMu         sync.Mutex
	serving        bool // Serve was called
	stopped        bool
	stopErr        error
	tmpDir         string
	files          *fileCache // temporary files for request bodies over inbuf_overflow
	loops          sync.Map   // gnet.EventLoop → *loopConns
	locals         sync.Map   // netip.AddrPort → *localAddr
	// baseCtx is the root of every connection's context: it carries
	// http.ServerContextKey.
	baseCtx context.Context
	closes  closeCounts // closed connections by reason
	counts  counters    // responses, durations, bytes, restarts, spools
	ops     *ops.Server // the metrics_listen listener, set before Ready
	access  *accessLog  // access_log; nil when off
	// bind are the listen addresses (gnet-style URLs) Serve binds, with
	// SO_REUSEPORT under reuse_port; none with the sockets option.
	bind []string

	sockets        []net.Listener // the listeners, bound by Serve or given (the sockets option)
	placeholderDir string         // holds gnet's private listener
	lastSweep      time.Time      // OnTick goroutine only
}

// New checks the options, resolves the listen addresses and prepares a
// server for the net/http handler h; nothing listens until Serve.
func New(h http.Handler, o limits.Options, log *slog.Logger) (*Server, error) {
	if h == nil {
		return nil, errors.New("waitron: the handler is nil")
	}
	return newServer(h, nil, o, log)
}

// NewFast is New for a fasthttp handler: the same engine, options and
// protections, with the requests given to h through the fasthttp adapter
// (adapter.ServeFast).
func NewFast(h fasthttp.RequestHandler, o limits.Options, log *slog.Logger) (*Server, error) {
	if h == nil {
		return nil, errors.New("waitron: the handler is nil")
	}
	return newServer(nil, h, o, log)
}

func newServer(h http.Handler, fh fasthttp.RequestHandler, o limits.Options, log *slog.Logger) (*Server, error) {
	err := o.Validate()
	if err != nil {
		return nil, err
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
	s := &Server{opts: o, cfg: compile(&o), handler: h, fast: fh, log: log, disp: disp, urls: []string{placeholder},
		ready: make(chan struct{}), tmpDir: os.TempDir(), sockets: sockets, bind: bind, placeholderDir: placeholderDir}
	s.baseCtx = context.WithValue(context.Background(), http.ServerContextKey, describe(h, &o))
	s.refreshDate()
	s.files = newFileCache(s.tmpDir)
	s.acfg = adapter.Config{
		Ident:            o.Ident,
		ExposeTracebacks: o.ExposeTracebacks,
		Log:              log,
		AppendDate:       func(b []byte) []byte { return append(b, *s.date.Load()...) },
		Draining:         s.draining.Load,
		LogRequests:      o.AccessLog != "",
		URLScheme:        o.URLScheme,
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
	if s.opts.IsSet("send_bytes") {
		s.log.Info("note: send_bytes is the size of the pieces responses are handed over in; output up to it gets a Content-Length",
			"send_bytes", s.opts.SendBytes)
	}
}

// Serve listens and serves until Shutdown. It returns nil after Shutdown,
// or an error if listening failed; called again while it serves, it
// returns an error at once, and called after Shutdown (or when Shutdown
// came first), http.ErrServerClosed. waitron accepts in Go (see
// sockets.go), so an accept error never reaches gnet; should the event
// loops still stop without Shutdown, Serve logs why and starts them again,
// backing off up to 5 s between attempts.
func (s *Server) Serve() error {
	s.stopMu.Lock()
	switch {
	case s.stopped:
		s.stopMu.Unlock()
		return http.ErrServerClosed
	case s.serving:
		s.stopMu.Unlock()
		return errors.New("waitron: Serve called while the server is already serving")
	}
	s.serving = true
	s.stopMu.Unlock()
	s.notes()
	defer s.disp.release()
	if s.opts.AccessLog != "" {
		a, err := openAccessLog(s.opts.AccessLog, s.opts.AccessLogFormat)
		if err != nil {
			err = fmt.Errorf("waitron: access_log: %w", err)
			s.once.Do(func() { s.readyErr = err; close(s.ready) })
			return err
		}
		s.access = a
		defer func() {
			a.close()
			if n := a.dropped.Load(); n > 0 {
				s.log.Warn("access log lines dropped: the log could not keep up with refused requests", "dropped", n)
			}
		}()
	}
	if len(s.bind) > 0 {
		lns, err := s.bindListeners(s.bind)
		if err != nil {
			s.once.Do(func() { s.readyErr = err; close(s.ready) })
			return err
		}
		s.sockets = lns
	}
	defer func() {
		for _, ln := range s.sockets {
			ln.Close() // after Shutdown, already; on a failed start, now
		}
	}()
	opsSrv, err := s.startOps()
	if err != nil {
		s.once.Do(func() { s.readyErr = err; close(s.ready) })
		return err
	}
	if opsSrv != nil {
		s.ops = opsSrv
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			opsSrv.Stop(ctx)
		}()
	}
	defer s.files.close()
	s.yieldToWorkers = runtime.GOMAXPROCS(0) <= s.loopCount()
	s.disp.linger = s.yieldToWorkers
	delay := 100 * time.Millisecond
	for restarts := 0; ; restarts++ {
		g := &generation{ended: make(chan struct{}), quiet: make(chan struct{}, 1)}
		s.gen.Store(g)
		var stopped []*runQueue
		s.loops.Range(func(_, v any) bool { // a previous run's loops: keep their counts, retire their queues
			lc := v.(*loopConns)
			s.counts.bytesIn.Add(lc.bytesIn.Load())
			stopped = append(stopped, lc.queue)
			return true
		})
		s.loops.Clear()
		s.disp.retire(stopped)
		s.started.Store(false)
		s.loopsGone.Store(false)
		os.MkdirAll(s.placeholderDir, 0o700) // OnBoot removed it after the previous bind
		err := gnet.Rotate(&handler{s: s}, s.urls,
			gnet.WithNumEventLoop(s.loopCount()),
			gnet.WithLoadBalancing(gnet.LeastConnections),
			gnet.WithReuseAddr(true),
			gnet.WithTicker(true),
			gnet.WithTCPNoDelay(gnet.TCPNoDelay),
			gnet.WithReadBufferCap(s.opts.RecvBytes),
			gnet.WithLogger(gnetLogger{s.log}),
		)
		s.loopsGone.Store(true)
		close(g.ended)
		if restarts == 0 && !s.isReady() {
			s.once.Do(func() {
				s.readyErr = err
				if err == nil {
					s.readyErr = errors.New("waitron: the engine stopped before it was ready")
				}
				close(s.ready)
			})
			if err != nil {
				return fmt.Errorf("waitron: %w", err)
			}
			return s.readyErr
		}
		if s.stopping.Load() {
			return nil
		}
		s.log.Error("the event loops stopped on their own; restarting them",
			"err", err, "restart", restarts+1, "in", delay.String())
		s.counts.restarts.Add(1)
		time.Sleep(delay)
		delay = min(2*delay, 5*time.Second)
		if s.stopping.Load() {
			return nil
		}
	}
}

// generation counts what one run of the event loops has in flight, so
// requests lost with a dead engine do not hold up a later Shutdown.
// Admission (connection_limit) and the connection count are per run too:
// connections of a dead engine must not hold slots of the next one.
type generation struct {
	ended    chan struct{} // closed when this run's event loops have stopped
	quiet    chan struct{} // poked when inflight falls to zero (Shutdown waits for it)
	inflight atomic.Int64
	conns    atomic.Int64
	adm      admission
}

func (s *Server) isReady() bool {
	select {
	case <-s.ready:
		return true
	default:
		return false
	}
}

// Conns returns the number of open client connections, parked ones
// included. Any goroutine.
func (s *Server) Conns() int64 { return s.gen.Load().conns.Load() }

// Ready is closed once the server accepts connections (or failed to start;
// see ReadyErr).
func (s *Server) Ready() <-chan struct{} { return s.ready }

// ReadyErr returns why the server failed to start, after Ready is closed.
func (s *Server) ReadyErr() error { <-s.ready; return s.readyErr }

// Addrs returns the addresses the server listens on, once Ready is closed.
func (s *Server) Addrs() []net.Addr { <-s.ready; return s.addrs }

// Shutdown stops accepting connections, stops reading new requests, lets
// every request already being served finish and its response drain, then
// stops the event loops. If ctx ends first, the remaining connections are
// closed and ctx's error is returned.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopMu.Lock() // a second Shutdown waits for the first and returns its result
	defer s.stopMu.Unlock()
	if s.stopped {
		return s.stopErr
	}
	if !s.serving {
		// Before Serve: nothing runs; Serve will refuse to start.
		s.stopped = true
		s.disp.release()
		s.once.Do(func() { s.readyErr = http.ErrServerClosed; close(s.ready) })
		return nil
	}
	select {
	case <-s.ready:
	case <-ctx.Done():
		return ctx.Err()
	}
	if s.readyErr != nil {
		s.stopped = true
		return nil
	}
	s.draining.Store(true)
	for _, ln := range s.sockets {
		ln.Close() // stops the accept loops
	}
	s.log.Info("draining: new connections are refused; waiting for the requests in flight",
		"open", s.gen.Load().conns.Load())
	var err error
	// Every flight, then every worker: a worker goes on after its
	// response's last bytes were handed over (its access-log line, its
	// counters, a handler whose client went away), and the access log is
	// closed once the loops end. A long wait says what it waits for, so
	// that a handler that never returns (or a bug) shows in the log.
	every := drainReport
	if s.hooks.drainReport != 0 {
		every = s.hooks.drainReport
	}
	report := time.NewTicker(every)
	defer report.Stop()
	// Woken by the events that can end the wait: the last flight ending
	// (generation.quiet), the last worker going idle (dispatcher.idle).
	for g := s.gen.Load(); (g.inflight.Load() > 0 || s.disp.busy()) && err == nil; g = s.gen.Load() {
		select {
		case <-ctx.Done():
			err = ctx.Err()
		case <-g.quiet:
		case <-s.disp.idle:
		case <-g.ended: // the loops stopped on their own; Serve starts the next run
		case <-report.C:
			running, queued := s.disp.load()
			s.log.Warn("draining: still waiting", "in_flight", g.inflight.Load(),
				"workers_running", running, "queued", queued, "open", g.conns.Load())
		}
	}
	s.stopping.Store(true)
	// gnet's Stop polls every 500 ms for the end it started; the event
	// loops end sooner. So Stop is only asked to start it (with a context
	// already done, it returns at once), and the end is awaited here.
	now, cancel := context.WithCancel(context.Background())
	cancel()
	if serr := s.eng.Stop(now); serr != nil && !errors.Is(serr, context.Canceled) && err == nil {
		err = serr
	}
	select {
	case <-s.gen.Load().ended:
	case <-time.After(5 * time.Second):
		if err == nil {
			err = errors.New("waitron: the event loops did not stop within 5 s")
		}
	}
	s.stopped, s.stopErr = true, err
	return err
}

// drainReport is how often a Shutdown that is still waiting for requests
// in flight logs what it waits for.
const drainReport = 10 * time.Second

func (s *Server) refreshDate() {
	b := codec.AppendDate(nil, time.Now())
	s.date.Store(&b)
}

// onStart runs at the first tick of each run of the event loops (gnet has
// no "started" event): the first time, it starts accepting on the
// listeners (which outlive a restart of the loops) and signals Ready.
func (s *Server) onStart() {
	if !s.isReady() {
		s.startSockets()
		s.once.Do(func() { close(s.ready) })
	}
}

// handler implements gnet.EventHandler. Every callback runs on an event
// loop except OnTick (gnet's ticker goroutine) and OnBoot.
type handler struct {
	gnet.BuiltinEventEngine
	s *Server
}

func (h *handler) OnBoot(eng gnet.Engine) gnet.Action {
	h.s.eng = eng
	os.RemoveAll(h.s.placeholderDir) // bound already; now nobody can connect to it
	return gnet.None
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
	// The next tick comes at the next whole second, so Date changes on time.
	return time.Until(time.Now().Truncate(time.Second).Add(time.Second)) + time.Millisecond, gnet.None
}

func (h *handler) OnOpen(gc gnet.Conn) ([]byte, gnet.Action) {
	s := h.s
	if s.draining.Load() {
		return nil, gnet.Close
	}
	c := newConn(s, gc, s.loopConnsOf(gc))
	gc.SetContext(c)
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
		case c.st.refused():
		case c.st.parked():
			h.s.unparkRemove(c)
		default:
			h.s.release(c.w.gen)
		}
		c.onClose(err)
	}
	return gnet.None
}

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
	reads   atomic.Int64  // OnTraffic calls: one per read of at most recv_bytes
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
func (s *Server) loopConnsOf(gc gnet.Conn) *loopConns {
	el := gc.EventLoop()
	if v, ok := s.loops.Load(el); ok {
		return v.(*loopConns)
	}
	// Only el stores its own entry, so the queue made here is the one used.
	// (A restart of the loops after an accept failure makes new loops, each
	// with a queue of its own; the old, empty ones stay in the dispatcher.)
	v, _ := s.loops.LoadOrStore(el, &loopConns{loop: el, queue: s.disp.newQueue()})
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
	s.loops.Range(func(_, v any) bool {
		lc := v.(*loopConns)
		_ = lc.loop.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
			for c := range lc.all() {
				c.sweep(now, idle)
			}
			return nil
		}))
		return true
	})
}

// unixURL checks a unix_socket path and returns its gnet URL. gnet removes
// whatever is at the path before binding, so anything but a stale socket
// is refused here.
func unixURL(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("unix_socket %q: %w", p, err)
	}
	if fi, err := os.Lstat(abs); err == nil && fi.Mode()&os.ModeSocket == 0 {
		return "", fmt.Errorf("unix_socket %q exists and is not a socket; refusing to replace it", p)
	}
	return (&url.URL{Scheme: "unix", Path: abs}).String(), nil
}

func sockaddrToAddr(sa unix.Sockaddr) net.Addr {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(a.Addr[:]).To16(), Port: a.Port}
	case *unix.SockaddrInet6:
		ip := make(net.IP, 16)
		copy(ip, a.Addr[:])
		return &net.TCPAddr{IP: ip, Port: a.Port}
	case *unix.SockaddrUnix:
		return &net.UnixAddr{Name: a.Name, Net: "unix"}
	}
	return nil
}

// gnetLogger sends gnet's own log lines to the server's logger instead of
// gnet's process-global stdout logger.
type gnetLogger struct{ l *slog.Logger }

func (g gnetLogger) Debugf(f string, a ...any) { g.l.Debug(strings.TrimSpace(fmt.Sprintf(f, a...))) }
func (g gnetLogger) Infof(f string, a ...any)  { g.l.Debug(strings.TrimSpace(fmt.Sprintf(f, a...))) }
func (g gnetLogger) Warnf(f string, a ...any)  { g.l.Warn(strings.TrimSpace(fmt.Sprintf(f, a...))) }
func (g gnetLogger) Errorf(f string, a ...any) { g.l.Error(strings.TrimSpace(fmt.Sprintf(f, a...))) }
func (g gnetLogger) Fatalf(f string, a ...any) { g.l.Error(strings.TrimSpace(fmt.Sprintf(f, a...))) }
