package tests

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	cws "github.com/coder/websocket"
	"github.com/valyala/fasthttp"

	"github.com/waitron/waitron"
	"github.com/waitron/waitron/adapter/fastadapter"
	"github.com/waitron/waitron/internal/testutil"
)

// ioTimeout bounds every read and write a test makes: a broken server
// makes a test fail, never hang.
const ioTimeout = 10 * time.Second

// server is a waitron server a test started through the public API.
type server struct {
	*waitron.Server
	addr string
	logs *testutil.SyncBuffer
}

// start serves h with waitron on 127.0.0.1:0 with the options in set
// (name, value, …) and shuts it down when the test ends.
func start(t *testing.T, h http.Handler, set ...string) *server {
	t.Helper()
	return startWith(t, func(o waitron.Options, log *slog.Logger) (*waitron.Server, error) {
		return waitron.NewServer(h, o, log)
	}, set...)
}

// startFast is start for a fasthttp handler.
func startFast(t *testing.T, h fasthttp.RequestHandler, set ...string) *server {
	t.Helper()
	return startWith(t, func(o waitron.Options, log *slog.Logger) (*waitron.Server, error) {
		return fastadapter.NewServer(h, o, log)
	}, set...)
}

func startWith(t *testing.T, mk func(waitron.Options, *slog.Logger) (*waitron.Server, error), set ...string) *server {
	t.Helper()
	o := waitron.DefaultOptions()
	set = append([]string{"listen", "127.0.0.1:0"}, set...)
	for i := 0; i+1 < len(set); i += 2 {
		if err := o.Set(set[i], set[i+1]); err != nil {
			t.Fatal(err)
		}
	}
	logs := &testutil.SyncBuffer{}
	srv, err := mk(o, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.ListenAndServe() }()
	if err := srv.ReadyErr(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	return &server{Server: srv, addr: srv.Addrs()[0].String(), logs: logs}
}

// dial connects to s, with the tests' deadline; the connection is closed
// when the test ends.
func (s *server) dial(t *testing.T) net.Conn { t.Helper(); return dialAddr(t, s.addr) }

func dialAddr(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(ioTimeout))
	t.Cleanup(func() { c.Close() })
	return c
}

// peerServer is h served by one server of a comparison.
type peerServer struct {
	name string
	addr string
}

func (p peerServer) dial(t *testing.T) net.Conn { t.Helper(); return dialAddr(t, p.addr) }

// bothServers serves h on waitron (with the options in set) and on
// net/http, and returns both.
func bothServers(t *testing.T, h http.Handler, set ...string) []peerServer {
	t.Helper()
	w := start(t, h, set...)
	std := httptest.NewUnstartedServer(h)
	std.Config.ErrorLog = log.New(io.Discard, "", 0)
	std.Start()
	t.Cleanup(std.Close)
	return []peerServer{{"waitron", w.addr}, {"net/http", std.Listener.Addr().String()}}
}

var dateRE = regexp.MustCompile(`Date: [^\r]*\r\n`)

// sameAsFasthttp sends raw (ending with a request that closes) to waitron
// and to fasthttp's own server and fails unless both answer the same
// bytes, Date masked; it returns waitron's answer.
func sameAsFasthttp(t *testing.T, name, raw, waitron, fasthttp string) string {
	t.Helper()
	roundTrip := func(addr string) string {
		c := dialAddr(t, addr)
		io.WriteString(c, raw)
		b, _ := io.ReadAll(c)
		return dateRE.ReplaceAllString(string(b), "Date: X\r\n")
	}
	got, want := roundTrip(waitron), roundTrip(fasthttp)
	if got != want {
		t.Errorf("%s: waitron\n%q\nfasthttp\n%q", name, got, want)
	}
	return got
}

// recv receives from ch, failing the test after ioTimeout.
func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(ioTimeout):
		t.Fatal("timed out waiting on a channel")
		panic("unreachable")
	}
}

// h2Servers serves h with waitron on a plain listener and a TLS one
// (HTTP/2 by ALPN and h2c by default), and with net/http, whose Protocols
// take HTTP/1, HTTP/2 and unencrypted HTTP/2, on a plain listener and a
// TLS one with the same certificate. It returns waitron's server and
// net/http's plain and TLS addresses.
func h2Servers(t *testing.T, h http.Handler, certs *testutil.Certs) (w *server, stdPlain, stdTLS string) {
	t.Helper()
	w = start(t, h, "tls_listen", "127.0.0.1:0", "certfile", certs.CertFile, "keyfile", certs.KeyFile)
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetHTTP2(true)
	p.SetUnencryptedHTTP2(true)
	std := &http.Server{Handler: h, Protocols: p, ErrorLog: log.New(io.Discard, "", 0),
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{certs.Server}}}
	plainLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tlsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go std.Serve(plainLn)
	go std.ServeTLS(tlsLn, "", "")
	t.Cleanup(func() { std.Close() })
	return w, plainLn.Addr().String(), tlsLn.Addr().String()
}

// coderEcho has coder/websocket echo a short and a 100,000-byte message
// through url (dialled with opts) and close cleanly.
func coderEcho(t *testing.T, url string, opts *cws.DialOptions) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	ws, _, err := cws.Dial(ctx, url, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	ws.SetReadLimit(1 << 20)
	for _, msg := range []string{"hello", strings.Repeat("x", 100000)} {
		if err := ws.Write(ctx, cws.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_, got, err := ws.Read(ctx)
		if err != nil || string(got) != msg {
			t.Fatalf("echo of %d bytes: %d bytes, %v", len(msg), len(got), err)
		}
	}
	if err := ws.Close(cws.StatusNormalClosure, "bye"); err != nil {
		t.Fatalf("close handshake: %v", err)
	}
}
