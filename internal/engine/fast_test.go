package engine_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/waitron/waitron/internal/engine"
	"github.com/waitron/waitron/internal/targetapp"
	"github.com/waitron/waitron/internal/testutil"
)

// roundTrip sends raw on a new connection to addr and reads until the
// server closes it (each raw here ends with a Connection: close request).
func roundTrip(t *testing.T, addr, raw string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(ioTimeout))
	io.WriteString(c, raw)
	b, _ := io.ReadAll(c)
	return masked(string(b))
}

// sameAsFasthttp sends raw to waitron and to fasthttp's own server and
// fails unless both answer the same bytes; it returns waitron's answer.
func sameAsFasthttp(t *testing.T, name, raw, waitron, fasthttp string) string {
	t.Helper()
	got, want := roundTrip(t, waitron, raw), roundTrip(t, fasthttp, raw)
	if got != want {
		t.Errorf("%s: waitron\n%q\nfasthttp\n%q", name, got, want)
	}
	return got
}

// TestFastWireLikeFasthttp: the same raw requests to the fasthttp target
// app on waitron and on fasthttp's own server get the same bytes back
// (Date masked): keep-alive, pipelining, HEAD, bodies by length and
// chunked (with a trailer), HTTP/1.0. (A streamed response's chunks follow
// its flushes as the writer's goroutine and the reader meet, on either
// server: TestFastTargetAppsAgree compares its decoded body.)
func TestFastWireLikeFasthttp(t *testing.T) {
	w := startFast(t, nil)
	ref := testutil.FastPeer(t, targetapp.NewFastWith(testCaps))
	for name, raw := range map[string]string{
		"pipelined":  "GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\nGET /json HTTP/1.1\r\nHost: a\r\n\r\nGET /bytes/5 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
		"head":       "HEAD /plaintext HTTP/1.1\r\nHost: a\r\n\r\nGET /status/404 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
		"echo":       "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Type: text/x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
		"chunked":    "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\nX-T: 1\r\n\r\n",
		"http10":     "GET /json HTTP/1.0\r\n\r\n",
		"http10-ka":  "GET /json HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /plaintext HTTP/1.0\r\n\r\n",
		"status-204": "GET /status/204 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
		"not-found":  "GET /nope HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
	} {
		sameAsFasthttp(t, name, raw, w.addr, ref)
	}
}

// TestFastTargetAppsAgree: the net/http target app and the fasthttp one,
// both on waitron, answer every endpoint alike (status, the framing and
// type fields, body) but the index, whose /delay line says that only the
// net/http app's stops when the client goes.
func TestFastTargetAppsAgree(t *testing.T) {
	std, fast := start(t, nil, "expose_tracebacks", "false"), startFast(t, nil)
	get := func(addr, method, path, body string) (int, http.Header, string) {
		req, _ := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "text/x")
		}
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/plaintext", ""}, {"GET", "/json", ""}, {"POST", "/echo", "some body"},
		{"GET", "/bytes/10000", ""}, {"GET", "/stream/3?size=100", ""}, {"GET", "/status/418", ""},
		{"GET", "/status/204", ""}, {"GET", "/status/x", ""}, {"GET", "/delay/1", ""}, {"GET", "/panic", ""},
		{"GET", "/upgrade/echo", ""}, {"GET", "/bytes/-1", ""}, {"GET", "/delay/3600001", ""}, {"HEAD", "/plaintext", ""},
		{"GET", "/cpu/10", ""}, {"GET", "/cpu/1000001", ""}, {"GET", "/sse/3?ms=1", ""}, {"GET", "/sse/2?ms=3600000", ""},
		{"GET", "/drip?bytes=120&ms=10", ""}, {"GET", "/drip?bytes=0", ""}, {"GET", "/gzip", ""}, {"GET", "/status/201:1,500:0", ""}, {"GET", "/status/200:x", ""},
	} {
		s1, h1, b1 := get(std.addr, c.method, c.path, c.body)
		s2, h2, b2 := get(fast.addr, c.method, c.path, c.body)
		if s1 != s2 || b1 != b2 {
			t.Errorf("%s %s: net/http app %d %q, fasthttp app %d %q", c.method, c.path, s1, b1, s2, b2)
		}
		for _, k := range []string{"Content-Type", "Content-Length", "Connection", "Server"} {
			if h1.Get(k) != h2.Get(k) {
				t.Errorf("%s %s: %s: net/http app %q, fasthttp app %q", c.method, c.path, k, h1.Get(k), h2.Get(k))
			}
		}
	}
	// /request describes the request alike.
	var d1, d2 targetapp.RequestInfo
	for addr, d := range map[string]*targetapp.RequestInfo{std.addr: &d1, fast.addr: &d2} {
		_, _, b := get(addr, "POST", "/request/a?x=1", "abc")
		if err := json.Unmarshal([]byte(b), d); err != nil {
			t.Fatal(err)
		}
		d.RemoteAddr, d.Headers, d.Host = "", nil, "" // two servers: two ports
	}
	if d1.Method == "" || fmt.Sprint(d1) != fmt.Sprint(d2) {
		t.Errorf("/request: net/http app %+v, fasthttp app %+v", d1, d2)
	}
}

// TestFastSpooledBody: a body over inbuf_overflow goes through the spool
// file and reaches a fasthttp handler as a stream, echoed back whole (from
// the file by sendfile, as far as the socket takes it).
func TestFastSpooledBody(t *testing.T) {
	s := startFast(t, nil)
	body := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	resp, err := http.Post("http://"+s.addr+"/echo", "application/x", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !bytes.Equal(got, body) {
		t.Fatalf("status %d, %d bytes back of %d", resp.StatusCode, len(got), len(body))
	}
	if st := s.Stats(); st.SpooledBodies != 1 || st.SentFromFile == 0 {
		t.Errorf("SpooledBodies = %d, want 1; SentFromFile = %d, want some (sendfile from the spool)", st.SpooledBodies, st.SentFromFile)
	}
}

// TestFastHijack: fasthttp's ctx.Hijack gets the connection after the
// 101, with the bytes the client sent right behind its request.
func TestFastHijack(t *testing.T) {
	s := startFast(t, nil, "threads", "1")
	c := s.dial(t)
	io.WriteString(c, "GET /upgrade/echo HTTP/1.1\r\nHost: a\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\nearly ")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("%v %v", resp, err)
	}
	io.WriteString(c, "late")
	got := make([]byte, len("early late"))
	if _, err := io.ReadFull(br, got); err != nil || string(got) != "early late" {
		t.Fatalf("echoed %q, %v", got, err)
	}
	// The hijacked handler left threads: the one worker serves others.
	c2 := s.dial(t)
	io.WriteString(c2, "GET /plaintext HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	if b, _ := io.ReadAll(c2); !strings.HasSuffix(string(b), "Hello, World!") {
		t.Fatalf("while hijacked: %q", b)
	}
}

// TestFastPanic: a panicking fasthttp handler gets waitron's 500 (with
// the traceback when asked) and the server goes on.
func TestFastPanic(t *testing.T) {
	s := startFast(t, nil, "expose_tracebacks", "true")
	got := roundTrip(t, s.addr, "GET /panic HTTP/1.1\r\nHost: a\r\n\r\n")
	if !strings.HasPrefix(got, "HTTP/1.1 500 Internal Server Error\r\n") || !strings.Contains(got, "the /panic endpoint panics on purpose") {
		t.Fatalf("%q", got)
	}
	if got := roundTrip(t, s.addr, "GET /plaintext HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"); !strings.HasSuffix(got, "Hello, World!") {
		t.Fatalf("after the panic: %q", got)
	}
}

// TestFastProtections: the engine's protections hold for the fasthttp
// adapter as for the net/http one: a head that never completes gets its
// 408 once request_header_timeout passes; a malformed request never
// reaches the handler; trusted-proxy headers give the client address.
func TestFastProtections(t *testing.T) {
	s := startFast(t, nil, "trusted_proxy", "127.0.0.1", "trusted_proxy_headers", "x-forwarded-for x-forwarded-proto")
	slow := s.dial(t)
	io.WriteString(slow, "GET / HTTP/1.1\r\nHost: a\r\nX-Slow: zz")
	s.waitRead(t, uint64(len("GET / HTTP/1.1\r\nHost: a\r\nX-Slow: zz")))
	engine.Advance(s.Server, 61*time.Second)
	b, _ := io.ReadAll(slow)
	expectEqual(t, "slow head", masked(string(b)), errorResp(408, "The request did not arrive in time (request head not complete within request_header_timeout)"))
	if got := roundTrip(t, s.addr, "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"); !strings.HasPrefix(got, "HTTP/1.1 400 Bad Request\r\n") {
		t.Errorf("conflicting lengths: %q", got)
	}
	// The client a trusted proxy names, as the net/http adapter gives it.
	std := start(t, nil, "trusted_proxy", "127.0.0.1", "trusted_proxy_headers", "x-forwarded-for x-forwarded-proto")
	const proxied = "GET /request HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil\r\nConnection: close\r\n\r\n"
	var seen [2]targetapp.RequestInfo
	for i, addr := range []string{std.addr, s.addr} {
		resp := roundTrip(t, addr, proxied)
		_, body, _ := strings.Cut(resp, "\r\n\r\n")
		if err := json.Unmarshal([]byte(body), &seen[i]); err != nil {
			t.Fatalf("%v: %q", err, resp)
		}
		if _, ok := seen[i].Headers["X-Forwarded-Host"]; ok {
			t.Errorf("an untrusted X-Forwarded-Host reached the handler: %v", seen[i].Headers)
		}
	}
	a, fb := seen[0], seen[1]
	if host, _, _ := net.SplitHostPort(fb.RemoteAddr); host != "203.0.113.9" || fb.Scheme != "https" || fb.Host != "a" ||
		a.RemoteAddr[:len("203.0.113.9")] != fb.RemoteAddr[:len("203.0.113.9")] || a.Scheme != fb.Scheme || a.Host != fb.Host {
		t.Errorf("behind the proxy: net/http adapter %s %s %s, fasthttp adapter %s %s %s", a.RemoteAddr, a.Scheme, a.Host, fb.RemoteAddr, fb.Scheme, fb.Host)
	}
}

// TestFastSendBytes: with a small send_bytes a fasthttp response larger
// than many pieces (and than the socket takes at once) is handed over a
// piece at a time and arrives whole and in order.
func TestFastSendBytes(t *testing.T) {
	s := startFast(t, nil, "send_bytes", "4096")
	got := roundTrip(t, s.addr, "GET /bytes/300000 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	head, body, _ := strings.Cut(got, "\r\n\r\n")
	want := strings.Repeat("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-_", 300000/64+1)[:300000]
	if !strings.Contains(head, "Content-Length: 300000") || body != want {
		t.Fatalf("head %q, %d body bytes, in order %v", head, len(body), body == want)
	}
}

// TestFastRequestLikeFasthttp: a handler sees the same request as on
// fasthttp's own server: method, URI, protocol, every header field as
// fasthttp lists them, the content length and the body.
func TestFastRequestLikeFasthttp(t *testing.T) {
	h := func(ctx *fasthttp.RequestCtx) {
		fmt.Fprintf(ctx, "%s %s %s len=%d host=%s close=%v\n", ctx.Method(), ctx.RequestURI(), ctx.Request.Header.Protocol(),
			ctx.Request.Header.ContentLength(), ctx.Host(), ctx.Request.Header.ConnectionClose())
		for k, v := range ctx.Request.Header.All() {
			fmt.Fprintf(ctx, "%s: %s\n", k, v)
		}
		fmt.Fprintf(ctx, "body %q\n", ctx.PostBody())
	}
	w, ref := startFast(t, h), testutil.FastPeer(t, h)
	for name, raw := range map[string]string{
		"get":     "GET /a?b=1 HTTP/1.1\r\nHost: x\r\nUser-Agent: t\r\nAccept: */*\r\nX-Two: 1\r\nX-Two: 2\r\nCookie: a=1; b=2\r\nConnection: close\r\n\r\n",
		"post":    "POST /p HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
		"chunked": "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n",
		"http10":  "GET /old HTTP/1.0\r\nHost: x\r\n\r\n",
		"host":    "GET / HTTP/1.1\r\nuser-agent: t\r\nhost: X.example:80\r\nx-after: 1\r\nConnection: close\r\n\r\n",
	} {
		sameAsFasthttp(t, name, raw, w.addr, ref)
	}
}

// TestFastStreamToHTTP10: a stream of unknown length to an HTTP/1.0
// client ends with the close, without chunk framing (fasthttp's own server
// would chunk it); to HTTP/1.1 it stays chunked.
func TestFastStreamToHTTP10(t *testing.T) {
	s := startFast(t, nil)
	got := roundTrip(t, s.addr, "GET /stream/3?size=4 HTTP/1.0\r\n\r\n")
	head, body, _ := strings.Cut(got, "\r\n\r\n")
	if strings.Contains(head, "Transfer-Encoding") || !strings.Contains(head, "Connection: close") || body != "abcdabcdabcd" {
		t.Errorf("HTTP/1.0: %q", got)
	}
	got = roundTrip(t, s.addr, "GET /stream/3?size=4 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	if !strings.Contains(got, "Transfer-Encoding: chunked\r\n") || !strings.HasSuffix(got, "0\r\n\r\n") {
		t.Errorf("HTTP/1.1: %q", got)
	}
}

// TestFastBackpressure: a fasthttp stream to a client that reads nothing
// blocks its handler at the watermark, and every byte arrives, in order,
// once the client reads: the pieces queued on the loop while the socket
// was full are the ones sent, although the adapter collects the next
// pieces in the same array (Output.Send keeps the buffers, not the
// array). Each piece is numbered, so one sent twice or lost shows.
func TestFastBackpressure(t *testing.T) {
	const pieces, size = 256, 64 << 10 // 16 MiB
	done := make(chan struct{})
	s := startFast(t, func(ctx *fasthttp.RequestCtx) {
		ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
			defer close(done)
			piece := make([]byte, size)
			for i := 0; i < pieces; i++ {
				for j := range piece {
					piece[j] = byte(i)
				}
				if _, err := w.Write(piece); err != nil || w.Flush() != nil {
					return
				}
			}
		})
	}, "outbuf_high_watermark", "1048576")
	c := s.dial(t)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	testutil.WaitFor(t, "the handler to block", func() bool { return s.Stats().WritesBlocked == 1 })
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got := make([]byte, size)
	for i := 0; i < pieces; i++ {
		if _, err := io.ReadFull(resp.Body, got); err != nil {
			t.Fatalf("piece %d: %v", i, err)
		}
		for j, b := range got {
			if b != byte(i) {
				t.Fatalf("piece %d: byte %d is %d", i, j, b)
			}
		}
	}
	recv(t, done)
}
