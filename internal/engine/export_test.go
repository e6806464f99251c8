package engine

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// NoTickCollect stops s's per-second checks from collecting responses that
// workers wrote themselves, so a test hangs (and fails at its deadline)
// if a prompt path is missing. Before Serve only.
func NoTickCollect(s *Server) { s.hooks.noTickCollect = true }

// HoldLoops blocks every event loop of s that has had a connection until
// release is called: output a worker hands to gnet then waits, queued,
// while what a worker writes itself still reaches the socket. handed
// reports the bytes the kernel or gnet has taken for those connections so
// far (with the loops held, only workers' own writes add to it).
func HoldLoops(s *Server) (handed func() int64, release func()) {
	gate := make(chan struct{})
	var mu sync.Mutex
	var conns []*conn
	var held sync.WaitGroup
	s.loops.Range(func(_, v any) bool {
		lc := v.(*loopConns)
		held.Add(1)
		err := lc.loop.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
			mu.Lock()
			for c := range lc.all() {
				conns = append(conns, c)
			}
			mu.Unlock()
			held.Done()
			<-gate
			return nil
		}))
		if err != nil {
			held.Done()
		}
		return true
	})
	held.Wait()
	handed = func() int64 {
		mu.Lock()
		defer mu.Unlock()
		var n int64
		for _, c := range conns {
			n += c.w.q.handed.Load()
		}
		return n
	}
	return handed, func() { close(gate) }
}

// Advance moves s's clock on by d and runs its periodic checks (the
// timeouts, the idle sweep, the closing of idle spool files) at once, as
// the next tick would, returning when every event loop has run them: a
// test passes a timeout without waiting for it.
func Advance(s *Server, d time.Duration) {
	s.clock.skew.Add(int64(d))
	s.files.trim(s.clock.stamp())
	now := s.clock.now()
	var ran sync.WaitGroup
	s.loops.Range(func(_, v any) bool {
		lc := v.(*loopConns)
		ran.Add(1)
		err := lc.loop.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
			defer ran.Done()
			for c := range lc.all() { // in the tick's order: the sweep, then the timeouts
				c.sweep(now, s.cfg.idleTimeout)
			}
			for c := range lc.all() {
				c.checkDeadlines(now)
			}
			return nil
		}))
		if err != nil {
			ran.Done()
		}
		return true
	})
	ran.Wait()
}

// PanicInAccessLog makes waitron's own code panic on the worker once, as
// it writes the JSON access log's line for the next response, which has
// been written (a bug's stand-in: the handler has returned). s must log
// in the JSON format. Before Serve only.
func PanicInAccessLog(s *Server) {
	s.hooks.accessJSON = func(h slog.Handler) slog.Handler { return &panicOnce{Handler: h} }
}

// PanicInLog makes s's logger panic once as it logs a line whose message
// is msg (a bug's stand-in in the code that logs it). Before Serve only.
func PanicInLog(s *Server, msg string) {
	s.log = slog.New(&panicOnce{Handler: s.log.Handler(), msg: msg})
}

// panicOnce is a slog.Handler that panics the first time it handles a
// record with message msg (any message, if empty).
type panicOnce struct {
	slog.Handler
	msg  string
	once *sync.Once
}

func (p *panicOnce) Handle(ctx context.Context, r slog.Record) error {
	if p.msg == "" || r.Message == p.msg {
		p.onceOf().Do(func() { panic("a test's panic in waitron's own code (" + r.Message + ")") })
	}
	return p.Handler.Handle(ctx, r)
}

func (p *panicOnce) onceOf() *sync.Once {
	if p.once == nil {
		p.once = new(sync.Once)
	}
	return p.once
}

// DrainReportEvery makes Shutdown report what it still waits for every d
// instead of every 10 s. Before Serve only.
func DrainReportEvery(s *Server, d time.Duration) { s.hooks.drainReport = d }
