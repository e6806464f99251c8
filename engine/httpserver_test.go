package engine_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/waitron/waitron/engine"
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
	for _, name := range []string{"waitron", "net/http"} {
		t.Run(name, func(t *testing.T) {
			var srv httpServer
			if name == "waitron" {
				ws, err := engine.New(h, limits.Default(), slog.New(slog.NewTextHandler(io.Discard, nil)))
				if err != nil {
					t.Fatal(err)
				}
				srv = ws
			} else {
				srv = &http.Server{Handler: h, ErrorLog: log.New(io.Discard, "", 0)}
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
