package engine_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/waitron/waitron/internal/testutil"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/waitron/waitron/internal/adapter"
	"github.com/waitron/waitron/internal/engine"
	"github.com/waitron/waitron/internal/targetapp"
)

// TestThreadsBound: with threads=2, never more than two handlers run at
// once however many clients wait.
func TestThreadsBound(t *testing.T) {
	var running, peak atomic.Int64
	gate := make(chan struct{})
	s := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := running.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		<-gate
		running.Add(-1)
	}), "threads", "2")
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := s.dial(t)
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
			io.ReadAll(c)
		}()
	}
	// All eight are in: two with a worker, six waiting in the queue.
	testutil.WaitFor(t, "two handlers running and six requests queued", func() bool {
		st := s.Stats()
		return running.Load() == 2 && st.Queued == 6
	})
	close(gate)
	wg.Wait()
	if p := peak.Load(); p != 2 {
		t.Fatalf("peak concurrent handlers = %d, want 2", p)
	}
}

// TestBackpressure: a client that does not read makes the handler's Write
// block at outbuf_high_watermark instead of buffering everything.
func TestBackpressure(t *testing.T) {
	var written atomic.Int64
	done := make(chan struct{})
	s := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(done)
		chunk := make([]byte, 64<<10)
		for i := 0; i < 256; i++ { // 16 MiB
			if _, err := w.Write(chunk); err != nil {
				return
			}
			written.Add(int64(len(chunk)))
		}
	}), "outbuf_high_watermark", "1048576")
	c := s.dial(t)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	// The server says when the handler's Write blocks on the watermark.
	testutil.WaitFor(t, "the handler to block", func() bool { return s.Stats().WritesBlocked == 1 })
	// Kernel buffers on both sides hold a few MiB at most; the rest must
	// still be with the handler.
	if n := written.Load(); n >= 16<<20 {
		t.Fatalf("handler wrote everything (%d bytes) to a client that reads nothing", n)
	}
	got, err := io.Copy(io.Discard, bufio.NewReader(io.LimitReader(c, 16<<20)))
	if err != nil || got != 16<<20 {
		t.Fatalf("read %d bytes: %v", got, err)
	}
	recv(t, done)
	if n := s.Stats().WritesBlocked; n != 0 {
		t.Errorf("WritesBlocked = %d once the handler returned", n)
	}
}

// TestShutdownLetsRequestsFinish: Shutdown waits for a handler that is
// still running, says in the log what it waits for while it does, and
// the response goes out (closing the connection) when the handler ends.
func TestShutdownLetsRequestsFinish(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	s := startWith(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		io.WriteString(w, "finished\n")
	}), func(srv *engine.Server) { engine.DrainReportEvery(srv, time.Nanosecond) })
	c := s.dial(t)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	recv(t, started)
	errc := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		errc <- s.Shutdown(ctx)
	}()
	testutil.WaitFor(t, "the drain to start", func() bool { return s.Stats().Draining })
	testutil.WaitFor(t, "the drain's report", func() bool {
		return strings.Contains(s.logs.String(), `msg="draining: still waiting" in_flight=1 workers_running=1 queued=0 open=1`)
	})
	close(release) // the handler finishes after Shutdown began
	expectResponse(t, c, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\nContent-Type: text/plain; charset=utf-8\r\nDate: X\r\nServer: waitron\r\nConnection: close\r\n\r\nfinished\n")
	if err := recv(t, errc); err != nil {
		t.Fatal(err)
	}
}

func TestRequestInfo(t *testing.T) {
	s := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, ok := adapter.RequestInfo(r)
		fmt.Fprintf(w, "%v|%s|%s|%s|%s|%s|%s", ok, info.Scheme, info.ServerName, info.ServerPort, info.ScriptName, r.URL.Path, info.PeerAddr)
	}), "server_name", "svc.example", "url_scheme", "https", "url_prefix", "/p")
	c := s.dial(t)
	_, port, _ := net.SplitHostPort(s.addr)
	for _, tc := range []struct{ target, want string }{
		{"/p", "true|https|svc.example|" + port + "|/p||" + c.LocalAddr().String()},
		{"/p/x", "true|https|svc.example|" + port + "|/p|/x|" + c.LocalAddr().String()},
		{"/px", "true|https|svc.example|" + port + "||/px|" + c.LocalAddr().String()},
	} {
		io.WriteString(c, "GET "+tc.target+" HTTP/1.1\r\nHost: a\r\n\r\n")
		expectResponse(t, c, fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\nContent-Type: text/plain; charset=utf-8\r\nDate: X\r\nServer: waitron\r\n\r\n%s", len(tc.want), tc.want))
	}
}

// TestIdleConnectionsClosed: once channel_timeout has passed, a
// connection that never sends, one stuck in a partial head, and an idle
// keep-alive are closed without a response, while a request that runs
// longer than the timeout is answered. The server's clock is advanced,
// not waited for.
func TestIdleConnectionsClosed(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	mux := http.NewServeMux()
	mux.Handle("/", targetapp.NewWith(testCaps))
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		io.WriteString(w, "slow done\n")
	})
	// channel_timeout 120 s; the head timeout out of the way.
	s := start(t, mux, "request_header_timeout", "300")
	var releaseOnce sync.Once
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
	sent := []string{"GET /plaintext HTTP/1.1\r\nHo", "GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n", "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n"}
	silent := s.dial(t)
	partial := s.dial(t)
	io.WriteString(partial, sent[0])
	keepAlive := s.dial(t)
	io.WriteString(keepAlive, sent[1])
	expectResponse(t, keepAlive, plaintextResp)
	slow := s.dial(t)
	io.WriteString(slow, sent[2])
	recv(t, started)
	s.waitRead(t, uint64(len(strings.Join(sent, ""))))
	engine.Advance(s.Server, 121*time.Second)
	for name, c := range map[string]net.Conn{"silent": silent, "partial head": partial, "idle keep-alive": keepAlive} {
		b, err := io.ReadAll(c) // bounded by the connection's deadline
		if err != nil || len(b) != 0 {
			t.Errorf("%s: %q, %v; want a close with nothing sent", name, b, err)
		}
	}
	releaseOnce.Do(func() { close(release) })
	expectResponse(t, slow, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\nContent-Type: text/plain; charset=utf-8\r\nDate: X\r\nServer: waitron\r\n\r\nslow done\n")
}

// TestConnectionLimit: with connection_limit=2 a third client waits,
// unread, until a slot frees and is then served; with backlog=1 a fourth
// is refused with a 503 at once. Each transition is logged once.
func TestConnectionLimit(t *testing.T) {
	s := start(t, nil, "connection_limit", "2", "backlog", "1")
	get := "GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n"
	first, second := s.dial(t), s.dial(t)
	for _, c := range []net.Conn{first, second} {
		io.WriteString(c, get)
		expectResponse(t, c, plaintextResp)
	}
	third := s.dial(t)
	io.WriteString(third, get)
	// Not answered while both slots are taken.
	third.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := third.Read(make([]byte, 1)); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("third client answered while over the limit: n=%d err=%v", n, err)
	}
	third.SetReadDeadline(time.Now().Add(ioTimeout))
	fourth := s.dial(t)
	got, err := io.ReadAll(fourth)
	if err != nil {
		t.Fatal(err)
	}
	expectEqual(t, "fourth client", masked(string(got)),
		errorResp(503, "Too many clients are waiting for a connection slot (connection_limit, backlog)"))
	first.Close() // frees a slot: the third client is served
	expectResponse(t, third, plaintextResp)
	second.Close()
	testutil.WaitFor(t, "the resume log line", func() bool {
		return strings.Contains(s.logs.String(), "dropped below the connection limit")
	})
	logs := s.logs.String()
	if strings.Count(logs, "reached the connection limit") != 1 {
		t.Errorf("want one limit warning:\n%s", logs)
	}
}

// TestParkedClientTimesOut: a client waiting unread for a slot under
// connection_limit for channel_timeout is answered 503 and closed, while
// the connection holding the slot, busy, is left alone and then served.
func TestParkedClientTimesOut(t *testing.T) {
	release := make(chan struct{})
	s := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			<-release
		}
		io.WriteString(w, "ok")
	}), "connection_limit", "1")
	first := s.dial(t)
	io.WriteString(first, "GET /hold HTTP/1.1\r\nHost: a\r\n\r\n")
	testutil.WaitFor(t, "the held request", func() bool { return s.Stats().Running == 1 })
	parked := s.dial(t)
	io.WriteString(parked, "GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n")
	testutil.WaitFor(t, "the client to be parked", func() bool { return s.Stats().Parked == 1 })
	engine.Advance(s.Server, 121*time.Second) // past channel_timeout (120 s)
	got, err := io.ReadAll(parked)
	if err != nil {
		t.Fatal(err)
	}
	expectEqual(t, "parked client", masked(string(got)),
		errorResp(503, "No connection slot became free in time (connection_limit, channel_timeout)"))
	if st := s.Stats(); st.Parked != 0 {
		t.Errorf("after the timeout: %d parked, want 0", st.Parked)
	}
	// Counted when the socket closes, after its write side was shut down.
	testutil.WaitFor(t, "the close for overload", func() bool { return s.Stats().Closed[engine.CloseOverload] == 1 })
	close(release)
	resp, err := http.ReadResponse(bufio.NewReader(first), nil)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(resp.Body); string(b) != "ok" {
		t.Errorf("the held request got %q", b)
	}
}

// onlyReader hides any WriterTo, so io.Copy asks the writer to ReadFrom.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

// TestSendBytes: output of at most send_bytes gets a Content-Length, more
// is chunked in send_bytes pieces, and a declared Content-Length cuts the
// output short — the same whether the handler calls Write or copies into
// the ResponseWriter, which is an io.ReaderFrom as net/http's is.
func TestSendBytes(t *testing.T) {
	s := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := w.(io.ReaderFrom); !ok {
			t.Error("the ResponseWriter is not an io.ReaderFrom")
		}
		q := r.URL.Query()
		if cl := q.Get("cl"); cl != "" {
			w.Header().Set("Content-Length", cl)
		}
		n, _ := strconv.Atoi(q.Get("n"))
		var k int64
		var err error
		if q.Get("via") == "copy" {
			k, err = io.Copy(w, onlyReader{strings.NewReader(strings.Repeat("s", n))})
		} else {
			var m int
			m, err = io.WriteString(w, strings.Repeat("s", n))
			k = int64(m)
		}
		if q.Get("cl") != "" && (err != http.ErrContentLength || k != 10) {
			t.Errorf("%s past the declared length: %d, %v", q.Get("via"), k, err)
		}
	}), "send_bytes", "16")
	for _, via := range []string{"write", "copy"} {
		t.Run(via, func(t *testing.T) {
			c := s.dial(t)
			get := func(query string) { io.WriteString(c, "GET /?via="+via+"&"+query+" HTTP/1.1\r\nHost: a\r\n\r\n") }
			get("n=16")
			expectResponse(t, c, "HTTP/1.1 200 OK\r\nContent-Length: 16\r\nContent-Type: text/plain; charset=utf-8\r\nDate: X\r\nServer: waitron\r\n\r\nssssssssssssssss")
			get("n=36")
			expectResponse(t, c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nTransfer-Encoding: chunked\r\nDate: X\r\nServer: waitron\r\n\r\n10\r\nssssssssssssssss\r\n10\r\nssssssssssssssss\r\n4\r\nssss\r\n0\r\n\r\n")
			get("n=0")
			expectResponse(t, c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nDate: X\r\nServer: waitron\r\n\r\n")
			get("n=20&cl=10")
			expectResponse(t, c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\nContent-Type: text/plain; charset=utf-8\r\nDate: X\r\nServer: waitron\r\n\r\nssssssssss")
		})
	}
}

// TestLogSocketErrors: a client that resets while its response is being
// written is a socket error, logged as a warning unless log_socket_errors
// is off.
func TestLogSocketErrors(t *testing.T) {
	for _, on := range []string{"true", "false"} {
		t.Run(on, func(t *testing.T) {
			s := start(t, nil, "log_socket_errors", on)
			c := s.dial(t)
			io.WriteString(c, "GET /bytes/50000000 HTTP/1.1\r\nHost: a\r\n\r\n")
			io.ReadFull(c, make([]byte, 1000))
			c.(*net.TCPConn).SetLinger(0)
			c.Close()
			testutil.WaitFor(t, "the socket error to be logged", func() bool { return strings.Contains(s.logs.String(), "socket error") })
			warned := strings.Contains(s.logs.String(), `level=WARN msg="socket error`)
			if warned != (on == "true") {
				t.Fatalf("log_socket_errors=%s, warning logged: %v\n%s", on, warned, s.logs.String())
			}
		})
	}
}

func TestCompatibilityNotes(t *testing.T) {
	s := start(t, nil, "asyncore_use_poll", "true", "asyncore_loop_timeout", "2")
	logs := s.logs.String()
	if !strings.Contains(logs, "asyncore_use_poll has no effect") || !strings.Contains(logs, "asyncore_loop_timeout sets how often maintenance may run") {
		t.Fatalf("no startup notes:\n%s", logs)
	}
}

func TestTrustedProxyOnTheWire(t *testing.T) {
	s := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, _ := adapter.RequestInfo(r)
		fmt.Fprintf(w, "%s %s %s %s", r.RemoteAddr, r.Host, info.Scheme, r.Header.Get("X-Forwarded-For"))
	}), "trusted_proxy", "127.0.0.1", "trusted_proxy_headers", "x-forwarded-for x-forwarded-proto x-forwarded-host")
	c := s.dial(t)
	_, port, _ := net.SplitHostPort(c.LocalAddr().String())
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: internal\r\nX-Forwarded-For: 10.1.1.1, 192.0.2.7\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: shop.example\r\n\r\n")
	body := "192.0.2.7:" + port + " shop.example https 192.0.2.7"
	expectResponse(t, c, fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\nContent-Type: text/plain; charset=utf-8\r\nDate: X\r\nServer: waitron\r\n\r\n%s", len(body), body))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: internal\r\nX-Forwarded-Proto: gopher\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n")
	expectResponse(t, c, errorResp(400, `Header "X-Forwarded-Proto" malformed.`))
	expectClosed(t, c)
	if !strings.Contains(s.logs.String(), `Malformed proxy header \"X-Forwarded-Proto\"`) {
		t.Errorf("malformed header not logged:\n%s", s.logs.String())
	}
}

// TestRejectedRequestReleasesBody: a request refused before its handler
// runs (a malformed trusted proxy header) gives back its spooled body's
// file.
func TestRejectedRequestReleasesBody(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("TMPDIR", dir)
	s := start(t, nil, "inbuf_overflow", "1024", "trusted_proxy", "127.0.0.1", "trusted_proxy_headers", "x-forwarded-proto")
	c := s.dial(t)
	fmt.Fprintf(c, "POST /echo HTTP/1.1\r\nHost: a\r\nX-Forwarded-Proto: gopher\r\nContent-Length: 100000\r\n\r\n%s", strings.Repeat("q", 100000))
	expectResponse(t, c, errorResp(400, `Header "X-Forwarded-Proto" malformed.`))
	expectClosed(t, c)
	testutil.WaitFor(t, "the spool file to be given back", func() bool { open, named := spoolFiles(t, dir); return open <= 1 && named == 0 })
	// Given back, it serves the next upload: still one file. (Read by the
	// handler: an echo would send it with sendfile, and the file is then
	// emptied before it is reused.)
	c = s.dial(t)
	fmt.Fprintf(c, "POST /request HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n%s", strings.Repeat("r", 100000))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("second upload: %v %v", resp, err)
	}
	io.Copy(io.Discard, resp.Body)
	if open, named := spoolFiles(t, dir); open != 1 || named != 0 {
		t.Fatalf("after a rejected and a served upload: %d open spool files, %d names; want 1 and 0", open, named)
	}
}

// TestEmptyIdent: ident "" sends no Server header, and error bodies say
// "(generated by server)".
func TestEmptyIdent(t *testing.T) {
	s := start(t, nil, "ident", "")
	c := s.dial(t)
	io.WriteString(c, "GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n")
	expectResponse(t, c, strings.Replace(plaintextResp, "Server: waitron\r\n", "", 1))
	got := s.roundTrip(t, "GET / HTTP/9.9\r\n\r\n")
	body := "HTTP Version Not Supported\r\n\r\nOnly HTTP/1.0 and HTTP/1.1 are supported\r\n\r\n(generated by server)"
	expectEqual(t, "error without ident", masked(got), fmt.Sprintf("HTTP/1.1 505 HTTP Version Not Supported\r\nConnection: close\r\n"+
		"Content-Length: %d\r\nContent-Type: text/plain; charset=utf-8\r\nDate: X\r\n\r\n%s", len(body), body))
}

// TestEchoSpooledBodyWithSendfile: a spooled body copied into a response
// of declared length goes from its file to the socket with sendfile, as
// much as the socket takes, and the rest the usual way; the file is then
// emptied before it is reused, so the next body cannot overwrite pages
// still in the socket's queue: every echo comes back whole and in order.
func TestEchoSpooledBodyWithSendfile(t *testing.T) {
	s := start(t, nil)
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	defer c.CloseIdleConnections()
	var withSendfile uint64
	for i, size := range []int{1 << 20, 8 << 20, 1 << 20, 3 << 20} {
		body := make([]byte, size)
		for j := range body {
			body[j] = byte(j*7 + j>>12 + i)
		}
		before := s.Stats().SentFromFile
		resp, err := c.Post("http://"+s.addr+"/echo", "application/x", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("%d bytes: got %d back (%v), equal %v", size, len(got), err, bytes.Equal(got, body))
		}
		// Each echo goes by sendfile as far as the socket takes it when
		// its body is copied; whether anything of the connection is
		// still pending then is the client's timing, so only the sum
		// must show it.
		sent := s.Stats().SentFromFile - before
		if sent > uint64(size) {
			t.Errorf("%d bytes echoed, %d of them with sendfile", size, sent)
		}
		withSendfile += sent
	}
	if withSendfile == 0 {
		t.Error("no echo went by sendfile")
	}
}
