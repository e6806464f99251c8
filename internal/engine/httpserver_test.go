package engine_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/waitron/waitron/internal/engine"
	"github.com/waitron/waitron/limits"
)

// httpServer is the lifecycle net/http's *http.Server has; *engine.Server
// has it too, so a program can swap one for the other.
type httpServer interface {
	ListenAndServe() error
	Serve(net.Listener) error
	Shutdown(context.Context) error
	Close() error
	RegisterOnShutdown(func())
	SetKeepAlivesEnabled(bool)
}

var (
	_ httpServer = (*http.Server)(nil)
	_ httpServer = (*engine.Server)(nil)
)

// served is a server running on a listener the test made: its address,
// and what its Serve returned once it returns.
type served struct {
	name   string
	srv    httpServer
	addr   string
	result chan error
}

// onEachServer runs f with h served by waitron (through Serve(ln)) and by
// net/http, in turn; f stops the server itself.
func onEachServer(t *testing.T, h http.Handler, f func(t *testing.T, s served)) {
	onEachServerWith(t, h, engine.NetHTTP{}, f)
}

// onEachServerWith is onEachServer with net/http's per-connection hooks
// set on both servers.
func onEachServerWith(t *testing.T, h http.Handler, hooks engine.NetHTTP, f func(t *testing.T, s served)) {
	for _, name := range []string{"waitron", "net/http"} {
		t.Run(name, func(t *testing.T) {
			var srv httpServer
			if name == "waitron" {
				ws, err := engine.New(h, limits.Default(), slog.New(slog.NewTextHandler(io.Discard, nil)))
				if err != nil {
					t.Fatal(err)
				}
				if err := ws.SetNetHTTP(hooks); err != nil {
					t.Fatal(err)
				}
				srv = ws
			} else {
				srv = &http.Server{Handler: h, ErrorLog: log.New(io.Discard, "", 0),
					ConnState: hooks.ConnState, BaseContext: hooks.BaseContext, ConnContext: hooks.ConnContext}
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			s := served{name: name, srv: srv, addr: ln.Addr().String(), result: make(chan error, 1)}
			go func() { s.result <- srv.Serve(ln) }()
			t.Cleanup(func() { srv.Close() })
			f(t, s)
		})
	}
}

// TestServeReturnsErrServerClosed: Serve(ln) serves ln, and returns
// http.ErrServerClosed after Shutdown and after Close, as net/http's does.
func TestServeReturnsErrServerClosed(t *testing.T) {
	for _, stop := range []string{"Shutdown", "Close"} {
		t.Run(stop, func(t *testing.T) {
			onEachServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }), func(t *testing.T, s served) {
				resp := rawExchange(t, s.addr, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
				if !strings.HasSuffix(resp, "ok") {
					t.Fatalf("response: %q", resp)
				}
				var err error
				if stop == "Shutdown" {
					ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
					defer cancel()
					err = s.srv.Shutdown(ctx)
				} else {
					err = s.srv.Close()
				}
				if err != nil {
					t.Fatalf("%s: %v", stop, err)
				}
				if err := recv(t, s.result); !errors.Is(err, http.ErrServerClosed) {
					t.Fatalf("Serve returned %v, want http.ErrServerClosed", err)
				}
				if err := s.srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
					t.Fatalf("ListenAndServe after %s: %v, want http.ErrServerClosed", stop, err)
				}
			})
		})
	}
}

// TestCloseCutsRequestsInFlight: Close does not wait for a request being
// served: its client's connection closes without a response, and Close
// returns while the handler still runs; RegisterOnShutdown's functions run
// on Shutdown, not on Close. As net/http.
func TestCloseCutsRequestsInFlight(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
	})
	onEachServer(t, h, func(t *testing.T, s served) {
		hooked := make(chan struct{}, 1)
		s.srv.RegisterOnShutdown(func() { hooked <- struct{}{} })
		c := dialAddr(t, s.addr)
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		recv(t, entered)
		if err := s.srv.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		expectClosed(t, c)
		release <- struct{}{}
		if err := recv(t, s.result); !errors.Is(err, http.ErrServerClosed) {
			t.Fatalf("Serve returned %v", err)
		}
		select {
		case <-hooked:
			t.Fatal("Close ran a RegisterOnShutdown function")
		default:
		}
	})
}

// TestRegisterOnShutdown: Shutdown starts the registered functions as it
// begins, while a request is still being served.
func TestRegisterOnShutdown(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
		io.WriteString(w, "done")
	})
	onEachServer(t, h, func(t *testing.T, s served) {
		hooked := make(chan struct{})
		s.srv.RegisterOnShutdown(func() { close(hooked) })
		c := dialAddr(t, s.addr)
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		recv(t, entered)
		stopped := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
			defer cancel()
			stopped <- s.srv.Shutdown(ctx)
		}()
		recv(t, hooked) // before the request in flight ends
		release <- struct{}{}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("the request in flight: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		if string(b) != "done" {
			t.Fatalf("body %q", b)
		}
		if err := recv(t, stopped); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	})
}

// TestKeepAlivesDisabled: after SetKeepAlivesEnabled(false) a response
// says Connection: close and its connection closes; turned on again,
// connections stay open. As net/http.
func TestKeepAlivesDisabled(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	onEachServer(t, h, func(t *testing.T, s served) {
		s.srv.SetKeepAlivesEnabled(false)
		c := dialAddr(t, s.addr)
		br := bufio.NewReader(c)
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.ReadAll(resp.Body)
		if !resp.Close { // (ReadResponse takes Connection: close into Close)
			t.Fatal("keep-alive off: the response does not close the connection")
		}
		expectClosed(t, br)

		s.srv.SetKeepAlivesEnabled(true)
		c = dialAddr(t, s.addr)
		br = bufio.NewReader(c)
		for range 2 {
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			io.ReadAll(resp.Body)
			if resp.Close {
				t.Fatal("keep-alive on: the response closes the connection")
			}
		}
	})
}

// rawExchange sends raw on a new connection to addr and returns all it reads.
func rawExchange(t *testing.T, addr, raw string) string {
	t.Helper()
	c := dialAddr(t, addr)
	io.WriteString(c, raw)
	b, _ := io.ReadAll(c)
	return string(b)
}

// dialAddr connects to addr, with the tests' deadline; the connection is
// closed at the end of the test.
func dialAddr(t *testing.T, addr string) net.Conn {
	t.Helper()
	return peerServer{addr: addr}.dial(t)
}

// stateLog records ConnState's calls per connection (by the client's
// address) and says when one reached a final state.
type stateLog struct {
	mu     sync.Mutex
	states map[string][]http.ConnState
	final  chan string
}

func newStateLog() *stateLog {
	return &stateLog{states: map[string][]http.ConnState{}, final: make(chan string, 16)}
}

func (l *stateLog) record(c net.Conn, st http.ConnState) {
	l.mu.Lock()
	k := c.RemoteAddr().String()
	l.states[k] = append(l.states[k], st)
	l.mu.Unlock()
	if st == http.StateClosed || st == http.StateHijacked {
		l.final <- k
	}
}

// of waits for client c's connection to reach a final state and returns
// its states.
func (l *stateLog) of(t *testing.T, c net.Conn) []http.ConnState {
	t.Helper()
	k := c.LocalAddr().String()
	for {
		if recv(t, l.final) == k {
			l.mu.Lock()
			defer l.mu.Unlock()
			return l.states[k]
		}
	}
}

// TestConnStateSequences: ConnState sees net/http's states in net/http's
// order for keep-alive requests, a request that closes, a hijack, and an
// idle connection at Shutdown.
func TestConnStateSequences(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("/hijack", func(w http.ResponseWriter, r *http.Request) {
		nc, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			io.WriteString(nc, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
			nc.Close()
		}
	})
	const (
		N = http.StateNew
		A = http.StateActive
		I = http.StateIdle
		H = http.StateHijacked
		C = http.StateClosed
	)
	l := newStateLog()
	onEachServerWith(t, mux, engine.NetHTTP{ConnState: l.record}, func(t *testing.T, s served) {
		check := func(what string, got []http.ConnState, want ...http.ConnState) {
			t.Helper()
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s: states %v, want %v", what, got, want)
			}
		}
		roundTrips := func(c net.Conn, br *bufio.Reader, reqs ...string) {
			t.Helper()
			for _, req := range reqs {
				io.WriteString(c, req)
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatal(err)
				}
				io.ReadAll(resp.Body)
			}
		}
		get := "GET / HTTP/1.1\r\nHost: a\r\n\r\n"

		c := dialAddr(t, s.addr)
		roundTrips(c, bufio.NewReader(c), get, get)
		c.Close()
		check("two keep-alive requests, then the client closes", l.of(t, c), N, A, I, A, I, C)

		c = dialAddr(t, s.addr)
		roundTrips(c, bufio.NewReader(c), "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
		check("a request that closes", l.of(t, c), N, A, C)

		c = dialAddr(t, s.addr)
		roundTrips(c, bufio.NewReader(c), "GET /hijack HTTP/1.1\r\nHost: a\r\n\r\n")
		check("a hijack", l.of(t, c), N, A, H)

		c = dialAddr(t, s.addr)
		roundTrips(c, bufio.NewReader(c), get)
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		if err := s.srv.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		check("an idle connection at Shutdown", l.of(t, c), N, A, I, C)
	})
}

type ctxKey string

// TestConnContexts: BaseContext's and ConnContext's values reach the
// request's context, with the server and the local address, as net/http.
func TestConnContexts(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		_, srv := ctx.Value(http.ServerContextKey).(*http.Server)
		la, _ := ctx.Value(http.LocalAddrContextKey).(net.Addr)
		fmt.Fprintf(w, "base=%v conn=%v server=%v local=%v", ctx.Value(ctxKey("base")), ctx.Value(ctxKey("conn")) == r.RemoteAddr,
			srv, la != nil && la.String() == r.Host)
	})
	var lns sync.Map
	hooks := engine.NetHTTP{
		BaseContext: func(ln net.Listener) context.Context {
			lns.Store(ln.Addr().String(), true)
			return context.WithValue(context.Background(), ctxKey("base"), "from BaseContext")
		},
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, ctxKey("conn"), c.RemoteAddr().String())
		},
	}
	onEachServerWith(t, h, hooks, func(t *testing.T, s served) {
		got := rawExchange(t, s.addr, "GET / HTTP/1.1\r\nHost: "+s.addr+"\r\nConnection: close\r\n\r\n")
		if want := "base=from BaseContext conn=true server=true local=true"; !strings.HasSuffix(got, want) {
			t.Errorf("got %q, want it to end in %q", got, want)
		}
		if _, ok := lns.Load(s.addr); !ok {
			t.Error("BaseContext was not given the listener")
		}
	})
}

// TestCloseWhileStarting: Close right after serving starts (the server may
// still be starting) stops it: serving returns http.ErrServerClosed, as
// net/http's does.
func TestCloseWhileStarting(t *testing.T) {
	onEachServer(t, http.NotFoundHandler(), func(t *testing.T, s served) {
		if err := s.srv.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := recv(t, s.result); !errors.Is(err, http.ErrServerClosed) {
			t.Fatalf("serving returned %v, want http.ErrServerClosed", err)
		}
	})
}
