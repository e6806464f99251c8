package engine_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/waitron/waitron/internal/adapter"
	"github.com/waitron/waitron/internal/fastadapter"
	"github.com/waitron/waitron/internal/testutil"
)

// TestFastRecordsRecycled: the records of fasthttp requests are recycled
// once served; on connections that pipeline bursts and send single
// requests at once, every response still answers its own request (the
// handler echoes the path), in order.
func TestFastRecordsRecycled(t *testing.T) {
	s := startFast(t, func(ctx *fasthttp.RequestCtx) { ctx.SetBody(ctx.Path()) })
	const conns, rounds = 8, 50
	errs := make(chan error, conns)
	for i := 0; i < conns; i++ {
		c := s.dial(t)
		go func() {
			errs <- func() error {
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				br := bufio.NewReader(c)
				for r := 0; r < rounds; r++ {
					var paths []string
					var req strings.Builder
					for k := 0; k < 1+r%4; k++ { // a single request, or a burst of up to 4
						p := fmt.Sprintf("/c%d/r%d/k%d", i, r, k)
						paths = append(paths, p)
						fmt.Fprintf(&req, "GET %s HTTP/1.1\r\nHost: a\r\n\r\n", p)
					}
					if _, err := io.WriteString(c, req.String()); err != nil {
						return err
					}
					for _, p := range paths {
						resp, err := http.ReadResponse(br, nil)
						if err != nil {
							return err
						}
						b, err := io.ReadAll(resp.Body)
						if err != nil || string(b) != p {
							return fmt.Errorf("asked %s, got %q (%v)", p, b, err)
						}
					}
				}
				return nil
			}()
		}()
	}
	for i := 0; i < conns; i++ {
		if err := recv(t, errs); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFastConnIdentity: a fasthttp handler sees its connection as on
// fasthttp's own server: one ConnID for every request of a connection and
// another for the next connection, ConnRequestNum counting its requests
// from 1 (pipelined or not), and a ConnTime no later than each request's
// Time, which moves on from one request to a later one.
func TestFastConnIdentity(t *testing.T) {
	h := func(ctx *fasthttp.RequestCtx) {
		fmt.Fprintf(ctx, "%d %d %d %d", ctx.ConnID(), ctx.ConnRequestNum(), ctx.ConnTime().UnixNano(), ctx.Time().UnixNano())
	}
	type seen struct{ id, n, conn, at int64 }
	// ask sends n requests on c at once and reads their answers.
	ask := func(t *testing.T, c net.Conn, br *bufio.Reader, n int) []seen {
		t.Helper()
		io.WriteString(c, strings.Repeat("GET / HTTP/1.1\r\nHost: a\r\n\r\n", n))
		var out []seen
		for range n {
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			var s seen
			if _, err := fmt.Sscan(string(b), &s.id, &s.n, &s.conn, &s.at); err != nil {
				t.Fatalf("%q: %v", b, err)
			}
			out = append(out, s)
		}
		return out
	}
	w, ref := startFast(t, h), testutil.FastPeer(t, h)
	for name, addr := range map[string]string{"waitron": w.addr, "fasthttp": ref} {
		t.Run(name, func(t *testing.T) {
			dial := func() (net.Conn, *bufio.Reader) {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.Close() })
				c.SetDeadline(time.Now().Add(ioTimeout))
				return c, bufio.NewReader(c)
			}
			a, abr := dial()
			first := append(ask(t, a, abr, 2), ask(t, a, abr, 1)...) // a burst of two, then one more
			b, bbr := dial()
			other := ask(t, b, bbr, 1)[0]
			for i, s := range first {
				if s.id != first[0].id || s.n != int64(i+1) || s.conn != first[0].conn || s.conn > s.at || s.at == 0 {
					t.Errorf("request %d on one connection: %+v (first %+v)", i+1, s, first[0])
				}
			}
			if first[2].at <= first[0].at {
				t.Errorf("a later request's Time %d is not after the first's %d", first[2].at, first[0].at)
			}
			if other.id == first[0].id || other.n != 1 || other.conn > other.at {
				t.Errorf("another connection: %+v (the first's %+v)", other, first[0])
			}
		})
	}
}

// TestFastPooledCtxLikeFresh: a RequestCtx reused for the next request
// starts as Init2 leaves one: the body buffers not kept although the last
// handler asked to keep them, and the request's logger set (fasthttp's
// Request.Reset clears it), so reading a spooled body whole logs
// fasthttp's warning for every request, not only a fresh context's first.
func TestFastPooledCtxLikeFresh(t *testing.T) {
	const rounds = 6
	s := startFast(t, func(ctx *fasthttp.RequestCtx) {
		fmt.Fprintf(ctx, "keep=%v/%v len=%d", ctx.Request.KeepBodyBuffer, ctx.Response.KeepBodyBuffer, len(ctx.PostBody()))
		ctx.Request.KeepBodyBuffer, ctx.Response.KeepBodyBuffer = true, true
	}, "threads", "1", "inbuf_overflow", "1024")
	body := strings.Repeat("x", 256<<10) // spooled, and over a buffer's worth: a body stream
	for i := range rounds {
		got := s.roundTrip(t, fmt.Sprintf("POST /%d HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", i, len(body), body))
		if !strings.HasSuffix(got, fmt.Sprintf("keep=false/false len=%d", len(body))) {
			t.Fatalf("request %d: %q", i, got)
		}
	}
	if n := strings.Count(s.logs.String(), "reads the entire stream into memory"); n != rounds {
		t.Errorf("fasthttp's warning logged %d times for %d requests:\n%s", n, rounds, s.logs.String())
	}
}

// TestFastInMemoryLikeFasthttp: responses whose body is in memory, which
// the adapter serialises into its buffers itself, are byte for byte what
// fasthttp's own server sends: statuses with and without a body (1xx
// aside, which fasthttp's server would send as a final status), an empty
// body, a body much larger than send_bytes, HEAD, a raw body, and one
// with a trailer (left to fasthttp's Response.Write); and the default
// Server field (ident, fasthttp's Name) read, replaced and deleted.
func TestFastInMemoryLikeFasthttp(t *testing.T) {
	h := func(ctx *fasthttp.RequestCtx) {
		var code, n int
		fmt.Sscanf(string(ctx.Path()), "/%d/%d", &code, &n)
		ctx.SetStatusCode(code)
		ctx.Response.Header.Set("X-Handler", "set")
		switch string(ctx.QueryArgs().Peek("server")) {
		case "read":
			ctx.Response.Header.Set("X-Server-Was", string(ctx.Response.Header.Server()))
		case "set":
			ctx.Response.Header.Set("Server", "mine")
		case "del":
			ctx.Response.Header.Del("Server")
		}
		switch {
		case ctx.QueryArgs().Has("raw"):
			ctx.Response.SetBodyRaw(bytes.Repeat([]byte("r"), n))
		case ctx.QueryArgs().Has("trailer"):
			ctx.Response.Header.SetTrailer("X-Sum")
			ctx.Response.Header.Set("X-Sum", "42")
			ctx.SetBody(bytes.Repeat([]byte("t"), n))
		case n > 0:
			ctx.SetBody(bytes.Repeat([]byte("b"), n))
		}
	}
	w, ref := startFast(t, h), testutil.FastPeer(t, h)
	for _, target := range []string{"/200/0", "/200/13", "/201/100", "/204/5", "/304/5", "/404/0", "/500/7",
		"/200/300000", "/200/70000?raw", "/200/9?trailer", "/99/3", "/200/1?server=read", "/200/1?server=set", "/200/1?server=del"} {
		for _, method := range []string{"GET", "HEAD"} {
			raw := method + " " + target + " HTTP/1.1\r\nHost: a\r\n\r\n" + method + " " + target + " HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
			sameAsFasthttp(t, method+" "+target, raw, w.addr, ref)
		}
	}
}

// TestFastRequestInfo: fastadapter.RequestInfo gives a fasthttp handler what
// RequestInfo gives a net/http one on the same options (url_scheme,
// url_prefix stripped into ScriptName, the ports), without putting
// anything among the ctx's user values, which stay the handler's; a ctx
// from fasthttp's own server has none.
func TestFastRequestInfo(t *testing.T) {
	set := []string{"url_scheme", "https", "url_prefix", "/app"}
	fast := startFast(t, func(ctx *fasthttp.RequestCtx) {
		i, ok := fastadapter.RequestInfo(ctx)
		n := 0
		ctx.VisitUserValuesAll(func(any, any) { n++ })
		fmt.Fprintf(ctx, "%v %s %s %q %s values=%d", ok, i.Scheme, i.ServerPort, i.ScriptName, ctx.Path(), n)
	}, set...)
	std := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i, ok := adapter.RequestInfo(r)
		fmt.Fprintf(w, "%v %s %s %q %s values=0", ok, i.Scheme, i.ServerPort, i.ScriptName, r.URL.Path)
	}), set...)
	for _, target := range []string{"/app/x", "/other"} {
		raw := "GET " + target + " HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
		got, want := fast.roundTrip(t, raw), std.roundTrip(t, raw)
		gotBody, wantBody := got[strings.Index(got, "\r\n\r\n")+4:], want[strings.Index(want, "\r\n\r\n")+4:]
		_, fastPort, _ := net.SplitHostPort(fast.addr)
		_, stdPort, _ := net.SplitHostPort(std.addr)
		if strings.Replace(wantBody, " "+stdPort+" ", " "+fastPort+" ", 1) != gotBody || !strings.HasPrefix(gotBody, "true https ") {
			t.Errorf("%s: fasthttp adapter %q, net/http adapter %q", target, gotBody, wantBody)
		}
	}
	var other fasthttp.RequestCtx
	if _, ok := fastadapter.RequestInfo(&other); ok {
		t.Error("a ctx that is not waitron's has an Info")
	}
}

// TestFastContextEndsWhenClientGoes: fastadapter.Context gives a fasthttp
// handler the signal an *http.Request's context gives a net/http one: it
// ends when the client closes its connection mid-request; a ctx from
// fasthttp's own server has none.
func TestFastContextEndsWhenClientGoes(t *testing.T) {
	entered, ended := make(chan struct{}), make(chan error, 1)
	srv := startFast(t, func(ctx *fasthttp.RequestCtx) {
		rc, ok := fastadapter.Context(ctx)
		if !ok {
			ended <- errors.New("no context")
			return
		}
		close(entered)
		select {
		case <-rc.Done():
			ended <- nil
		case <-time.After(20 * time.Second):
			ended <- errors.New("the context did not end after the client left")
		}
	})
	c, err := net.Dial("tcp", srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET /wait HTTP/1.1\r\nHost: a\r\n\r\n")
	<-entered
	c.Close()
	if err := <-ended; err != nil {
		t.Fatal(err)
	}
	var other fasthttp.RequestCtx
	if _, ok := fastadapter.Context(&other); ok {
		t.Error("a ctx that is not waitron's has a Context")
	}
}

// TestFastFileLikeFasthttp: a fasthttp handler's large file (fasthttp.FS,
// a byte range of it, and an *os.File body stream from an
// offset) arrives as from fasthttp's own server, byte for byte, and
// waitron sends it with sendfile(2), as that server does.
func TestFastFileLikeFasthttp(t *testing.T) {
	const size = 1<<20 + 123
	content := make([]byte, size)
	for i := range content {
		content[i] = byte(i % 251)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "big.bin")
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	// (fasthttp.ServeFile's cache would start a goroutine that never ends.)
	files := (&fasthttp.FS{Root: dir, AcceptByteRange: true, SkipCache: true}).NewRequestHandler()
	h := func(ctx *fasthttp.RequestCtx) {
		switch string(ctx.Path()) {
		case "/big.bin":
			files(ctx)
		case "/stream":
			f, err := os.Open(path)
			if err != nil {
				ctx.Error(err.Error(), 500)
				return
			}
			f.Seek(1000, io.SeekStart)
			ctx.SetBodyStream(f, size-1000) // fasthttp closes it
		}
	}
	w, ref := startFast(t, h), testutil.FastPeer(t, h)
	for name, raw := range map[string]string{
		"file":   "GET /big.bin HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
		"range":  "GET /big.bin HTTP/1.1\r\nHost: a\r\nRange: bytes=100000-899999\r\nConnection: close\r\n\r\n",
		"stream": "GET /stream HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
	} {
		got := sameAsFasthttp(t, name, raw, w.addr, ref)
		if _, body, _ := strings.Cut(got, "\r\n\r\n"); len(body) < 800000 {
			t.Errorf("%s: only %d body bytes", name, len(body))
		}
	}
	if n := w.Stats().SentFromFile; n == 0 {
		t.Error("waitron sent none of the files with sendfile")
	}
}
