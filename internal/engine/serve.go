package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/waitron/waitron/codec"
)

// Serving and shutting down: ListenAndServe and Serve run the event loops
// (and start them again should they stop on their own), Shutdown drains
// and stops them, Close stops them at once.

// ListenAndServe listens on the options' addresses (or adopts the
// options' sockets) and serves until Shutdown or Close, as net/http's
// ListenAndServe: it then returns http.ErrServerClosed, and an error if
// listening failed. Called again while it serves, it returns an error at
// once, and called after Shutdown (or when Shutdown came first),
// http.ErrServerClosed. waitron accepts in Go (see sockets.go), so an
// accept error never reaches gnet; should the event loops still stop
// without Shutdown, it logs why and starts them again, backing off up to
// 5 s between attempts.
func (s *Server) ListenAndServe() error { return s.serve(nil, false) }

// Serve serves the connections ln accepts, instead of the options'
// addresses, until Shutdown or Close, which close ln; otherwise it is
// ListenAndServe. ln must be a TCP or UNIX stream listener.
func (s *Server) Serve(ln net.Listener) error {
	if ln == nil {
		return errors.New("waitron: Serve: the listener is nil")
	}
	return s.serve(ln, false)
}

// ServeTLS is Serve over TLS, as net/http's ServeTLS: ln's connections
// start with a TLS handshake, with the certificate pair of certFile and
// keyFile, or (both empty) the options' (certfile and keyfile, or
// TLSConfig); the other TLS options apply, HTTP/2 is offered by ALPN, and
// tls_listen's addresses, if set, are served beside ln.
func (s *Server) ServeTLS(ln net.Listener, certFile, keyFile string) error {
	if ln == nil {
		return errors.New("waitron: ServeTLS: the listener is nil")
	}
	if s.tls == nil || certFile != "" || keyFile != "" {
		o := s.opts.Clone()
		o.TLSListen = []string{ln.Addr().String()} // (newTLSServer sets TLS up for tls_listen)
		if certFile != "" || keyFile != "" {
			o.CertFile, o.KeyFile = certFile, keyFile
		}
		if o.CertFile == "" && o.TLSConfig == nil {
			return errors.New("waitron: ServeTLS: no certificate: give certFile and keyFile, or set certfile and keyfile (or TLSConfig) in the options")
		}
		t, err := newTLSServer(&o, s.log)
		if err != nil {
			return err
		}
		if s.h2 != nil {
			t.cfg.NextProtos = []string{"h2", "http/1.1"}
		}
		s.tls = t // before serving: nothing reads it yet
	}
	return s.serve(ln, true)
}

func (s *Server) serve(ln net.Listener, secure bool) error {
	s.stopMu.Lock()
	switch {
	case s.stopped:
		s.stopMu.Unlock()
		return http.ErrServerClosed
	case s.serving:
		s.stopMu.Unlock()
		return errors.New("waitron: the server is already serving")
	}
	if ln != nil {
		if err := checkSockets([]net.Listener{ln}); err != nil {
			s.stopMu.Unlock()
			return err
		}
		s.sockets, s.bind = []net.Listener{ln}, nil
	}
	s.serving = true
	if s.h2 != nil {
		s.h2.srv = s.baseCtx.Value(http.ServerContextKey) // SetNetHTTP may have changed it until now
	}
	s.stopMu.Unlock()
	s.notes()
	defer s.disp.release()
	if s.opts.AccessLog != "" {
		a, err := openAccessLog(s.opts.AccessLog, s.opts.AccessLogFormat, s.hooks.accessJSON)
		if err != nil {
			err = fmt.Errorf("waitron: access_log: %w", err)
			s.once.Do(func() { s.readyErr = err; close(s.ready) })
			return err
		}
		s.access = a
		s.accessLog.Store(a)
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
	if len(s.tlsBind) > 0 {
		lns, err := s.bindListeners(s.tlsBind)
		if err != nil {
			for _, ln := range s.sockets {
				ln.Close()
			}
			s.once.Do(func() { s.readyErr = err; close(s.ready) })
			return err
		}
		s.tlsLns = make(map[net.Listener]bool, len(lns)+1)
		for _, ln := range lns {
			s.tlsLns[ln] = true
		}
		s.sockets = append(s.sockets, lns...)
	}
	if secure {
		if s.tlsLns == nil {
			s.tlsLns = map[net.Listener]bool{}
		}
		s.tlsLns[ln] = true
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
	defer func() { // accept loops waiting for a next run: there is none
		if r := s.run.Load(); r != nil {
			close(r.next)
		}
	}()
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
			return http.ErrServerClosed
		}
		s.log.Error("the event loops stopped on their own; restarting them",
			"err", err, "restart", restarts+1, "in", delay.String())
		s.counts.restarts.Add(1)
		time.Sleep(delay)
		delay = min(2*delay, 5*time.Second)
		if s.stopping.Load() {
			return http.ErrServerClosed
		}
	}
}

// engineRun is one run of the event loops as the accept loops see it: its
// engine, and next, closed when the next run is published or Serve
// returns, so that a connection accepted while the loops restart waits
// for them instead of being closed.
type engineRun struct {
	eng  gnet.Engine
	next chan struct{}
}

// generation counts what one run of the event loops has in flight, so
// requests lost with a dead engine do not hold up a later Shutdown.
// Admission (connection_limit) and the connection count are per run too:
// connections of a dead engine must not hold slots of the next one.
type generation struct {
	ended    chan struct{} // closed when this run's event loops have stopped
	quiet    chan struct{} // poked when inflight falls to zero (Shutdown waits for it)
	stopped  atomic.Bool   // the loops are stopping without Shutdown (gnet's OnShutdown): its closes are restarts
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
// stops the event loops; the functions given to RegisterOnShutdown start,
// each on a goroutine of its own, as it begins. If ctx ends first, the
// remaining connections are closed and ctx's error is returned.
func (s *Server) Shutdown(ctx context.Context) error {
	s.onShutdownMu.Lock()
	for _, f := range s.onShutdown {
		go f()
	}
	s.onShutdown = nil
	s.onShutdownMu.Unlock()
	return s.stop(ctx, false)
}

// Close closes the listeners and every connection at once, without
// waiting for the requests in flight (their handlers run on; what they
// write goes nowhere), as net/http's Close; the serving call returns
// http.ErrServerClosed.
func (s *Server) Close() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.stop(ctx, true); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// RegisterOnShutdown adds f to the functions Shutdown starts as it
// begins (net/http's RegisterOnShutdown): to tell hijacked connections,
// which Shutdown neither waits for nor closes, to end.
func (s *Server) RegisterOnShutdown(f func()) {
	s.onShutdownMu.Lock()
	s.onShutdown = append(s.onShutdown, f)
	s.onShutdownMu.Unlock()
}

// SetKeepAlivesEnabled turns keep-alive on (the default) or off, as
// net/http's: off, every response from then on says Connection: close
// and its connection closes after it.
func (s *Server) SetKeepAlivesEnabled(v bool) { s.noKeepAlive.Store(!v) }

// stop is Shutdown without its hooks, and Close with a ctx already done;
// closing says so: a server still starting is waited for (it is ready, or
// failed, soon), not left running.
func (s *Server) stop(ctx context.Context, closing bool) error {
	s.stopMu.Lock() // a second stop waits for the first and returns its result
	defer s.stopMu.Unlock()
	if s.stopped {
		return s.stopErr
	}
	if !s.serving {
		// Before serving: nothing runs; serving will refuse to start.
		s.stopped = true
		s.disp.release()
		s.once.Do(func() { s.readyErr = http.ErrServerClosed; close(s.ready) })
		return nil
	}
	if !s.isReady() {
		done := ctx.Done()
		if closing {
			done = nil
		}
		select {
		case <-s.ready:
		case <-done:
			return ctx.Err()
		}
	}
	if s.readyErr != nil {
		s.stopped = true
		return nil
	}
	s.draining.Store(true)
	for _, ln := range s.sockets {
		ln.Close() // stops the accept loops
	}
	s.tls.stop()
	h2done := make(chan struct{}) // GOAWAY on every HTTP/2 connection, and their drain
	go func() { s.h2.shutdown(ctx, closing); close(h2done) }()
	s.collectAll() // responses workers wrote themselves end their flights now, not at the next tick
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
	<-h2done // bounded by ctx too
	s.stopping.Store(true)
	// gnet's Stop polls on an interval of its own (shutdownPollInterval)
	// for the end it started; the event loops end sooner. So Stop is only asked to start it (with a context
	// already done, it returns at once), and the end is awaited here.
	now, cancel := context.WithCancel(context.Background())
	cancel()
	if serr := s.run.Load().eng.Stop(now); serr != nil && !errors.Is(serr, context.Canceled) && err == nil {
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
// no "started" event): it gives the accept loops the run's engine, and the
// first time starts them on the listeners (which outlive a restart of the
// loops) and signals Ready.
func (s *Server) onStart() {
	// The accept loops register with this run's loops from now on; those
	// waiting for it (they met the last run stopped) go on.
	if old := s.run.Swap(&engineRun{eng: s.booted, next: make(chan struct{})}); old != nil {
		close(old.next)
	}
	if !s.isReady() {
		s.startSockets()
		s.once.Do(func() { close(s.ready) })
	}
}

// ReopenAccessLog writes what is pending to the access log's file, then
// opens its path again and goes on there (what a process does on SIGHUP
// after logrotate moved the file away). A no-op without an access log or
// before Serve opened it. Any goroutine.
func (s *Server) ReopenAccessLog() error {
	a := s.accessLog.Load()
	if a == nil {
		return nil
	}
	res := make(chan error, 1)
	select {
	case a.reopen <- res:
		return <-res
	case <-a.done:
		return nil
	}
}
