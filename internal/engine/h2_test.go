package engine_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/waitron/waitron/internal/engine"
	"github.com/waitron/waitron/internal/testutil"
)

// h2Client speaks HTTP/2 only: over TLS (h2 by ALPN) or in the clear
// (h2c by prior knowledge).
func h2Client(certs *testutil.Certs) *http.Client {
	p := new(http.Protocols)
	p.SetHTTP2(true)
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Timeout: ioTimeout, Transport: &http.Transport{TLSClientConfig: certs.ClientConfig(), Protocols: p}}
}

// h2Peer is net/http serving h with HTTP/2 over TLS (the same
// certificate) and h2c by prior knowledge; it returns both addresses.
func h2Peer(t *testing.T, certs *testutil.Certs, h http.Handler) (tlsAddr, plainAddr string) {
	t.Helper()
	ts := httptest.NewUnstartedServer(h)
	ts.EnableHTTP2 = true
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{certs.Server}}
	ts.StartTLS()
	t.Cleanup(ts.Close)
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	plain := httptest.NewUnstartedServer(h)
	plain.Config.Protocols = p
	plain.Start()
	t.Cleanup(plain.Close)
	return ts.Listener.Addr().String(), plain.Listener.Addr().String()
}

// TestHTTP2LikeNetHTTP: Go's client over h2 (TLS) and h2c gets from
// waitron what it gets from net/http: the protocol, r.TLS with h2
// negotiated, bodies of many frames both ways.
func TestHTTP2LikeNetHTTP(t *testing.T) {
	certs := testutil.NewCerts(t)
	s, tlsAddr := startTLS(t, http.HandlerFunc(tlsEcho), certs)
	peerTLS, peerPlain := h2Peer(t, certs, http.HandlerFunc(tlsEcho))
	big := strings.Repeat("waitron ", 1<<17)
	for _, tc := range []struct {
		method, path, body string
	}{{"GET", "/", ""}, {"POST", "/echo", big}, {"GET", "/big", ""}} {
		for _, scheme := range []string{"https", "http"} {
			w, n := tlsAddr, peerTLS
			if scheme == "http" {
				w, n = s.addr, peerPlain
			}
			var got [2]string
			for i, a := range []string{w, n} {
				c := h2Client(certs)
				for range 2 {
					got[i] = get(t, c, tc.method, scheme+"://"+a+tc.path, []byte(tc.body))
				}
				c.CloseIdleConnections()
			}
			if got[0] != got[1] || !strings.HasPrefix(got[0], "200 HTTP/2.0") {
				t.Errorf("%s %s %s:\nwaitron:  %s\nnet/http: %s", scheme, tc.method, tc.path, got[0], got[1])
			}
		}
	}
	if got := get(t, h2Client(certs), "GET", "https://"+tlsAddr+"/", nil); !strings.Contains(got, `alpn="h2"`) {
		t.Errorf("r.TLS over h2: %s", got)
	}
	st := s.Stats()
	var n uint64
	for _, r := range st.Requests {
		n += r.Count
	}
	if n < 12 {
		t.Errorf("%d responses counted, want the HTTP/2 ones too (12)", n)
	}
}

// TestHTTP2Threads: HTTP/2 streams and HTTP/1 requests together never run
// more than threads handlers at once; the streams over it wait for a
// worker and are all served.
func TestHTTP2Threads(t *testing.T) {
	certs := testutil.NewCerts(t)
	var running, most atomic.Int32
	release := make(chan struct{})
	arrived := make(chan struct{}, 16)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := running.Add(1)
		defer running.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		arrived <- struct{}{}
		<-release
		fmt.Fprint(w, r.Proto)
	})
	s, tlsAddr := startTLS(t, h, certs, "threads", "2")
	c, h1 := h2Client(certs), &http.Client{Timeout: ioTimeout}
	var wg sync.WaitGroup
	results := make(chan string, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client, url := c, "https://"+tlsAddr+"/"
			switch i % 4 {
			case 2:
				url = "http://" + s.addr + "/" // h2c
			case 3:
				client, url = h1, "http://"+s.addr+"/" // HTTP/1.1
			}
			req, _ := http.NewRequest("GET", url, nil)
			resp, err := client.Do(req)
			if err != nil {
				results <- err.Error()
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			results <- string(b)
		}()
	}
	<-arrived
	<-arrived
	testutil.WaitFor(t, "the other requests queued", func() bool { return s.Stats().Queued == 6 })
	if n := running.Load(); n != 2 {
		t.Fatalf("%d handlers running, want threads (2)", n)
	}
	close(release)
	wg.Wait()
	close(results)
	protos := map[string]int{}
	for r := range results {
		protos[r]++
	}
	if protos["HTTP/2.0"] != 6 || protos["HTTP/1.1"] != 2 {
		t.Errorf("responses: %v, want 6 over HTTP/2 and 2 over HTTP/1.1", protos)
	}
	if m := most.Load(); m != 2 {
		t.Errorf("at most %d handlers ran at once, want threads (2)", m)
	}
}

// TestHTTP2ShutdownDrains: Shutdown sends GOAWAY: the stream in flight is
// answered in full, the client then opens no stream there, and Shutdown
// returns once it is done.
func TestHTTP2ShutdownDrains(t *testing.T) {
	certs := testutil.NewCerts(t)
	started := make(chan struct{})
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(started)
			<-release
		}
		fmt.Fprint(w, "done "+r.URL.Path)
	})
	s, tlsAddr := startTLS(t, h, certs)
	c := h2Client(certs)
	if got := get(t, c, "GET", "https://"+tlsAddr+"/first", nil); got != "200 HTTP/2.0 done /first" {
		t.Fatal(got)
	}
	slow := make(chan string, 1)
	go func() { slow <- get(t, c, "GET", "https://"+tlsAddr+"/slow", nil) }()
	<-started
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	testutil.WaitFor(t, "the drain to start", func() bool { return s.Stats().Draining })
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) with a stream in flight", err)
	default:
	}
	close(release)
	if got := <-slow; got != "200 HTTP/2.0 done /slow" {
		t.Errorf("the stream in flight: %s", got)
	}
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Open != 0 || st.Closed[engine.CloseShutdown] != 1 {
		t.Errorf("after the drain: %d open, %d closed by shutdown", st.Open, st.Closed[engine.CloseShutdown])
	}
}

// TestHTTP2PrefaceTimeout: a TLS client that chose h2 and sends no
// preface, and a plain one that sends half of it, are closed at
// request_header_timeout.
func TestHTTP2PrefaceTimeout(t *testing.T) {
	certs := testutil.NewCerts(t)
	s, tlsAddr := startTLS(t, http.HandlerFunc(tlsEcho), certs, "request_header_timeout", "1")
	cfg := certs.ClientConfig()
	cfg.NextProtos = []string{"h2"}
	tc, err := tls.Dial("tcp", tlsAddr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	if p := tc.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("ALPN: %q", p)
	}
	pc, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	_, _ = io.WriteString(pc, "PRI * HTTP/2.0\r\n\r\nSM")
	for _, c := range []net.Conn{tc, pc} {
		_ = c.SetReadDeadline(time.Now().Add(ioTimeout))
		if _, err := io.ReadAll(c); err != nil && !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "reset") {
			t.Fatalf("%v: %v, want the server's close", c.RemoteAddr(), err)
		}
	}
}

// TestHTTP2AccessLog: responses over HTTP/2 (TLS and h2c) have their
// access-log lines, with HTTP/2.0 as the protocol, beside HTTP/1.1's
// over TLS.
func TestHTTP2AccessLog(t *testing.T) {
	certs := testutil.NewCerts(t)
	path := filepath.Join(t.TempDir(), "access.log")
	s, tlsAddr := startTLS(t, http.HandlerFunc(tlsEcho), certs, "access_log", path)
	for _, c := range []struct {
		client *http.Client
		url    string
	}{
		{h2Client(certs), "https://" + tlsAddr + "/over-h2"},
		{h2Client(certs), "http://" + s.addr + "/over-h2c"},
		{h1Client(certs, nil), "https://" + tlsAddr + "/over-tls"},
	} {
		get(t, c.client, "GET", c.url, nil)
		c.client.CloseIdleConnections()
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The log is written out by its goroutine as Serve returns, which is
	// after Shutdown returns.
	wants := []string{`"GET /over-h2 HTTP/2.0" 200`, `"GET /over-h2c HTTP/2.0" 200`, `"GET /over-tls HTTP/1.1" 200`}
	testutil.WaitFor(t, "the three lines in the access log", func() bool {
		b, _ := os.ReadFile(path)
		for _, want := range wants {
			if !strings.Contains(string(b), want) {
				return false
			}
		}
		return true
	})
}

// TestH2CUpgradeRefused: an HTTP/1.1 request asking to upgrade to h2c is
// answered over HTTP/1.1, as net/http with Protocols.UnencryptedHTTP2
// answers it.
func TestH2CUpgradeRefused(t *testing.T) {
	certs := testutil.NewCerts(t)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, r.Proto) })
	s := start(t, h)
	_, peerPlain := h2Peer(t, certs, h)
	var got [2]string
	for i, a := range []string{s.addr, peerPlain} {
		c, err := net.Dial("tcp", a)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(ioTimeout))
		_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"+
			"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n")
		resp, body := testutil.ReadResponse(t, bufio.NewReader(c), "GET")
		got[i] = fmt.Sprintf("%s %d %s", resp.Proto, resp.StatusCode, body)
		c.Close()
	}
	if got[0] != got[1] || got[0] != "HTTP/1.1 200 HTTP/1.1" {
		t.Errorf("waitron %q, net/http %q", got[0], got[1])
	}
}
