package engine

import (
	"context"
	"sync"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// NoTickCollect stops s's per-second checks from collecting responses that
// workers wrote themselves, so a test hangs (and fails at its deadline)
// if a prompt path is missing. Before Serve only.
func NoTickCollect(s *Server) { s.hooks.noTickCollect = true }

// PauseAfterDirectWrite makes the next response a worker writes itself
// wait, written but not yet reported to the loop, until resume is called;
// written is closed when one does. Before Serve only.
func PauseAfterDirectWrite(s *Server) (written <-chan struct{}, resume func()) {
	w, gate := make(chan struct{}), make(chan struct{})
	var once sync.Once
	f := func() {
		once.Do(func() {
			close(w)
			<-gate
		})
	}
	s.hooks.directWritten = f
	return w, func() { close(gate) }
}

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
			n += c.w.handed.Load()
		}
		return n
	}
	return handed, func() { close(gate) }
}

// Advance moves s's clock on by d and runs its periodic checks (the
// timeouts and the idle sweep) at once, as the next tick would, returning
// when every event loop has run them: a test passes a timeout without
// waiting for it.
func Advance(s *Server, d time.Duration) {
	s.clock.skew.Add(int64(d))
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

// PanicAfterDirectWrite makes waitron's own code panic on the worker once,
// right after the next response a worker writes itself is on the socket
// (a bug's stand-in: the handler has returned). Before Serve only.
func PanicAfterDirectWrite(s *Server) {
	var once sync.Once
	s.hooks.directWritten = func() { once.Do(func() { panic("a test's panic in worker-side engine code") }) }
}

// PanicOnDispatch makes waitron's own code panic on the event loop once,
// as the next complete request is about to be handed to a worker (a
// bug's stand-in). Before Serve only.
func PanicOnDispatch(s *Server) {
	var once sync.Once
	s.hooks.dispatching = func() { once.Do(func() { panic("a test's panic in loop-side engine code") }) }
}

// DrainReportEvery makes Shutdown report what it still waits for every d
// instead of every 10 s. Before Serve only.
func DrainReportEvery(s *Server, d time.Duration) { s.hooks.drainReport = d }
