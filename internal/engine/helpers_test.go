package engine_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/waitron/waitron/internal/engine"
	"github.com/waitron/waitron/internal/fastadapter"
	"github.com/waitron/waitron/internal/targetapp"
	"github.com/waitron/waitron/internal/testutil"
	"github.com/waitron/waitron/limits"
)

// ioTimeout bounds every read and write a test makes: a broken server makes
// a test fail, never hang.
const ioTimeout = 10 * time.Second

type testServer struct {
	*engine.Server
	addr string
	logs *testutil.SyncBuffer
}

// start runs a server for h (the target app when nil) on 127.0.0.1:0 and
// stops it when the test ends.
func start(t *testing.T, h http.Handler, set ...string) *testServer {
	t.Helper()
	return startWith(t, h, nil, set...)
}

// startWith is start with before run on the server before Serve: the
// test hooks (NoTickCollect, PanicInLog) are set there, as plain
// fields the request path reads without synchronisation.
func startWith(t *testing.T, h http.Handler, before func(*engine.Server), set ...string) *testServer {
	t.Helper()
	if h == nil {
		h = targetapp.NewWith(testCaps)
	}
	return startServer(t, func(o limits.Options, log *slog.Logger) (*engine.Server, error) { return engine.New(h, o, log) }, before, set...)
}

// startFast is start for a fasthttp handler (the fasthttp target app when
// nil), served through the fasthttp adapter.
func startFast(t *testing.T, h fasthttp.RequestHandler, set ...string) *testServer {
	t.Helper()
	return startFastWith(t, h, nil, set...)
}

// startFastWith is startFast with before, as startWith.
func startFastWith(t *testing.T, h fasthttp.RequestHandler, before func(*engine.Server), set ...string) *testServer {
	t.Helper()
	if h == nil {
		h = targetapp.NewFastWith(testCaps)
	}
	return startServer(t, func(o limits.Options, log *slog.Logger) (*engine.Server, error) {
		return engine.NewFor(fastadapter.Adapter(h), o, log)
	}, before, set...)
}

// startServer makes a server with mk from the default options and set, on
// 127.0.0.1:0 unless set names an address, runs before (if any), serves,
// and stops the server when the test ends.
func startServer(t testing.TB, mk func(limits.Options, *slog.Logger) (*engine.Server, error), before func(*engine.Server), set ...string) *testServer {
	t.Helper()
	o := limits.Default()
	ownAddr := false
	for i := 0; i+1 < len(set); i += 2 {
		switch set[i] {
		case "listen", "host", "port", "unix_socket":
			ownAddr = true
		}
	}
	if !ownAddr {
		if err := o.Set("listen", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i+1 < len(set); i += 2 {
		if err := o.Set(set[i], set[i+1]); err != nil {
			t.Fatal(err)
		}
	}
	logs := &testutil.SyncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := mk(o, log)
	if err != nil {
		t.Fatal(err)
	}
	if before != nil {
		before(srv)
	}
	served := make(chan error, 1)
	go func() { served <- srv.ListenAndServe() }()
	select {
	case <-srv.Ready():
	case <-time.After(ioTimeout):
		t.Fatal("server did not become ready")
	}
	if err := srv.ReadyErr(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		select {
		case err := <-served:
			if !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("serve: %v, want http.ErrServerClosed", err)
			}
		case <-time.After(ioTimeout):
			t.Error("Serve did not return after Shutdown")
		}
	})
	return &testServer{Server: srv, addr: srv.Addrs()[0].String(), logs: logs}
}

func (s *testServer) dial(t *testing.T) net.Conn {
	t.Helper()
	network := "tcp"
	if _, ok := s.Addrs()[0].(*net.UnixAddr); ok {
		network = "unix"
	}
	c, err := net.DialTimeout(network, s.addr, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(ioTimeout))
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip sends raw and returns everything the server sends until it
// closes the connection.
func (s *testServer) roundTrip(t *testing.T, raw string) string {
	t.Helper()
	c := s.dial(t)
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading until close: %v (got %q)", err, b)
	}
	return string(b)
}

// expectResponse reads exactly one response of the length want implies
// from r and compares it with want, whose Date values are written "X".
func expectResponse(t *testing.T, r io.Reader, want string) {
	t.Helper()
	n := len(want) + strings.Count(want, "Date: X\r\n")*(len(http.TimeFormat)-1)
	got := make([]byte, n)
	if k, err := io.ReadFull(r, got); err != nil {
		t.Fatalf("reading a response: %v\n got: %q\nwant: %q", err, got[:k], want)
	}
	expectEqual(t, "response", masked(string(got)), want)
}

// expectClosed checks the server sends nothing more and closes.
func expectClosed(t *testing.T, r io.Reader) {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil || len(b) > 0 {
		t.Fatalf("expected the connection to close with nothing more, got %q, err %v", b, err)
	}
}

var dateRE = regexp.MustCompile(`Date: [^\r]*\r\n`)

// masked replaces the Date value, the only part of a response that varies.
func masked(s string) string { return dateRE.ReplaceAllString(s, "Date: X\r\n") }

func crlf(lines ...string) string { return strings.Join(lines, "\r\n") }

func expectEqual(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Fatalf("%s:\n got: %q\nwant: %q", what, got, want)
	}
}

// serverRead waits until the server has read everything c sent: the
// client's send queue and the server socket's receive queue are both
// empty, as /proc/net/tcp reports them (IPv4 loopback only), or the
// server has closed the connection.
func serverRead(t *testing.T, c net.Conn) {
	t.Helper()
	hexAddr := func(a net.Addr) string {
		ta := a.(*net.TCPAddr)
		ip := ta.IP.To4()
		return fmt.Sprintf("%02X%02X%02X%02X:%04X", ip[3], ip[2], ip[1], ip[0], ta.Port)
	}
	client, server := hexAddr(c.LocalAddr()), hexAddr(c.RemoteAddr())
	testutil.WaitFor(t, "the server to read what was sent", func() bool {
		b, err := os.ReadFile("/proc/net/tcp")
		if err != nil {
			t.Fatalf("reading /proc/net/tcp: %v", err)
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 5 {
				continue
			}
			local, remote, queues := f[1], f[2], f[4] // tx_queue:rx_queue
			tx, rx, _ := strings.Cut(queues, ":")
			switch {
			case local == client && remote == server:
				if strings.Trim(tx, "0") != "" {
					return false
				}
			case local == server && remote == client:
				if strings.Trim(rx, "0") != "" {
					return false
				}
			}
		}
		return true // both queues empty, or the connection is gone, which the caller will find
	})
}

// remoteSeenThrough sends a request through the proxy at addr to a server
// answering with r.RemoteAddr, and fails unless that is the client's own
// address.
func remoteSeenThrough(t *testing.T, addr, proxy string, logs fmt.Stringer) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(ioTimeout))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	_, body := testutil.ReadResponse(t, bufio.NewReader(c), http.MethodGet)
	if body != c.LocalAddr().String() {
		t.Fatalf("RemoteAddr %q behind %s, want the client's %q (%s: %s)", body, proxy, c.LocalAddr(), proxy, logs)
	}
}

// waitRead waits until the server has read at least n bytes from its
// clients in all (Stats.BytesIn) and returns what it has read.
func (s *testServer) waitRead(t *testing.T, n uint64) uint64 {
	t.Helper()
	var got uint64
	testutil.WaitFor(t, fmt.Sprintf("the server to read %d bytes", n), func() bool {
		got = s.Stats().BytesIn
		return got >= n
	})
	return got
}

// recv returns the next value from ch, failing the test when none comes
// within ioTimeout: a server or handler that never delivers fails the
// test at once instead of holding the package until go test's own
// timeout. Test goroutine only.
func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(ioTimeout):
		t.Fatalf("timed out waiting for a %T on a channel", *new(T))
		panic("unreachable")
	}
}

// testCaps lets the tests' target app make the responses and delays the
// tests need (a gigabyte for a reader that stalls), beyond the caps the
// command serves with.
var testCaps = targetapp.Caps{MaxDelay: time.Hour, MaxBytes: 1 << 40}
