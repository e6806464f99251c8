package targetapp

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/valyala/fasthttp"

	"github.com/waitron/waitron/internal/fastadapter"
)

// NewFast returns the target application written on fasthttp's API
// (--app target-fasthttp) with DefaultCaps: the same endpoints, with the
// same answers, as New's, for waitron's fasthttp adapter and fasthttp's
// own server alike.
func NewFast() fasthttp.RequestHandler { return NewFastWith(DefaultCaps) }

// NewFastWith is NewFast with caps c.
func NewFastWith(c Caps) fasthttp.RequestHandler {
	// fasthttp's API has no per-request cancellation: on fasthttp's own
	// server /delay waits its time out whether the client stays or not; on
	// waitron, fastadapter.Context ends it sooner.
	index := indexOf(c, "sooner if the client goes (on waitron; fasthttp's own server has no cancellation)")
	return func(ctx *fasthttp.RequestCtx) {
		path := string(ctx.Path())
		switch {
		case path == "/":
			ctx.SetContentType("text/plain; charset=utf-8")
			ctx.SetBodyString(index)
		case path == "/plaintext":
			ctx.SetContentType("text/plain")
			ctx.SetBody(helloText)
		case path == "/json":
			ctx.SetContentType("application/json")
			ctx.SetBody(helloJSON)
		case path == "/echo":
			fastEcho(ctx)
		case path == "/request" || strings.HasPrefix(path, "/request/"):
			fastDescribe(ctx)
		case strings.HasPrefix(path, "/bytes/"):
			n, msg, ok := c.bytes(path[len("/bytes/"):])
			if !ok {
				fastError(ctx, msg, http.StatusBadRequest)
				return
			}
			ctx.SetContentType("application/octet-stream")
			ctx.SetBodyStream(&patternReader{left: n}, int(n))
		case strings.HasPrefix(path, "/stream/"):
			n, size, msg, ok := c.stream(path[len("/stream/"):], string(ctx.QueryArgs().Peek("size")))
			if !ok {
				fastError(ctx, msg, http.StatusBadRequest)
				return
			}
			ctx.SetContentType("application/octet-stream")
			ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
				for i := 0; i < n; i++ {
					if writePattern(w, int64(size)) != nil || w.Flush() != nil {
						return
					}
				}
			})
		case strings.HasPrefix(path, "/delay/"):
			d, msg, ok := c.delay(path[len("/delay/"):])
			if !ok {
				fastError(ctx, msg, http.StatusBadRequest)
				return
			}
			if rc, ok := fastadapter.Context(ctx); ok {
				t := time.NewTimer(d)
				select {
				case <-t.C:
				case <-rc.Done():
					t.Stop()
					return // nobody to answer
				}
			} else {
				time.Sleep(d)
			}
			ctx.SetContentType("text/plain; charset=utf-8")
			ctx.SetBodyString("delayed " + strconv.FormatInt(d.Milliseconds(), 10) + " ms\n")
		case strings.HasPrefix(path, "/status/"):
			code, ok := pickStatus(path[len("/status/"):])
			if !ok {
				fastError(ctx, statusUsage, http.StatusBadRequest)
				return
			}
			ctx.SetContentType("text/plain; charset=utf-8")
			ctx.SetStatusCode(code)
			if code != http.StatusNoContent && code != http.StatusNotModified {
				ctx.SetBodyString(strconv.Itoa(code) + " " + http.StatusText(code) + "\n")
			}
		case strings.HasPrefix(path, "/sse/"):
			n, every, msg, ok := c.sse(path[len("/sse/"):], string(ctx.QueryArgs().Peek("ms")))
			if !ok {
				fastError(ctx, msg, http.StatusBadRequest)
				return
			}
			ctx.SetContentType("text/event-stream")
			ctx.Response.Header.Set("Cache-Control", "no-cache")
			ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
				for i := range n {
					if i > 0 && every > 0 {
						time.Sleep(every) // fasthttp has no cancellation
					}
					if _, err := w.WriteString(sseEvent(i)); err != nil || w.Flush() != nil {
						return
					}
				}
			})
		case path == "/drip":
			args := ctx.QueryArgs()
			n, every, msg, ok := c.drip(string(args.Peek("bytes")), string(args.Peek("ms")))
			if !ok {
				fastError(ctx, msg, http.StatusBadRequest)
				return
			}
			ctx.SetContentType("application/octet-stream")
			ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
				for i, piece := range dripPieces(n) {
					if i > 0 {
						time.Sleep(every) // fasthttp has no cancellation
					}
					if writePattern(w, piece) != nil || w.Flush() != nil {
						return
					}
				}
			})
			// After the stream writer, which would make it chunked: the
			// length is known, and a server sends it as a Content-Length.
			ctx.Response.Header.SetContentLength(int(n))
		case path == "/gzip":
			body, encoding := gzipDoc(string(ctx.Request.Header.Peek("Accept-Encoding")))
			ctx.SetContentType("application/json")
			ctx.Response.Header.Set("Vary", "Accept-Encoding")
			if encoding != "" {
				ctx.Response.Header.Set("Content-Encoding", encoding)
			}
			ctx.SetBody(body)
		case strings.HasPrefix(path, "/cpu/"):
			sum, ok := cpuWork(path[len("/cpu/"):])
			if !ok {
				fastError(ctx, cpuUsage, http.StatusBadRequest)
				return
			}
			ctx.SetContentType("text/plain; charset=utf-8")
			ctx.SetBodyString(sum + "\n")
		case path == "/runtime":
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			ctx.SetContentType("application/json")
			json.NewEncoder(ctx).Encode(map[string]uint64{"pid": uint64(os.Getpid()), "goroutines": uint64(runtime.NumGoroutine()),
				"heap_alloc": m.HeapAlloc, "heap_inuse": m.HeapInuse, "num_gc": uint64(m.NumGC)})
		case path == "/upgrade/echo":
			fastUpgradeEcho(ctx)
		case path == "/ws":
			fastWSEcho(ctx)
		case path == "/panic":
			panic("the /panic endpoint panics on purpose")
		default:
			fastError(ctx, "404 page not found", http.StatusNotFound)
		}
	}
}

// fastError answers as net/http's http.Error does.
func fastError(ctx *fasthttp.RequestCtx, msg string, code int) {
	ctx.Response.Header.Set("X-Content-Type-Options", "nosniff")
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.SetStatusCode(code)
	ctx.SetBodyString(msg + "\n")
}

func fastEcho(ctx *fasthttp.RequestCtx) {
	if ct := ctx.Request.Header.ContentType(); len(ct) > 0 {
		ctx.Response.Header.SetContentTypeBytes(ct)
	} else {
		ctx.SetContentType("application/octet-stream")
	}
	if s := ctx.RequestBodyStream(); s != nil { // a spooled body: streamed back
		ctx.SetBodyStream(s, ctx.Request.Header.ContentLength())
		return
	}
	ctx.SetBody(ctx.PostBody())
}

func fastDescribe(ctx *fasthttp.RequestCtx) {
	var n int64
	if s := ctx.RequestBodyStream(); s != nil {
		n, _ = io.Copy(io.Discard, s)
	} else {
		n = int64(len(ctx.PostBody()))
	}
	scheme, scriptName := "http", ""
	if info, ok := fastadapter.RequestInfo(ctx); ok {
		scheme, scriptName = info.Scheme, info.ScriptName
	}
	headers := map[string][]string{}
	for k, v := range ctx.Request.Header.All() {
		key := textproto.CanonicalMIMEHeaderKey(string(k))
		if key == "Host" || key == "Transfer-Encoding" {
			continue // net/http keeps these out of r.Header
		}
		headers[key] = append(headers[key], string(v))
	}
	path, raw := string(ctx.Path()), ""
	if orig := string(ctx.URI().PathOriginal()); orig != path && strings.Contains(orig, "%") {
		raw = orig
	}
	info := RequestInfo{
		Method: string(ctx.Method()), RequestURI: string(ctx.Request.Header.RequestURI()), Path: path, RawPath: raw,
		Query: string(ctx.URI().QueryString()), Proto: string(ctx.Request.Header.Protocol()), Host: string(ctx.Host()),
		RemoteAddr: ctx.RemoteAddr().String(), Scheme: scheme, ScriptName: scriptName,
		ContentLength: int64(ctx.Request.Header.ContentLength()), BodyLength: n, Headers: headers,
	}
	ctx.SetContentType("application/json")
	enc := json.NewEncoder(ctx)
	enc.SetIndent("", "  ")
	enc.Encode(info)
}

// fastUpgradeEcho is upgradeEcho on fasthttp's Hijack: the 101 is the
// response, and the hijack handler echoes what follows.
func fastUpgradeEcho(ctx *fasthttp.RequestCtx) {
	if !strings.EqualFold(string(ctx.Request.Header.Peek("Upgrade")), "echo") {
		ctx.Response.Header.Set("Upgrade", "echo")
		ctx.Response.Header.Set("Connection", "Upgrade")
		fastError(ctx, "send Upgrade: echo", http.StatusUpgradeRequired)
		return
	}
	ctx.SetStatusCode(http.StatusSwitchingProtocols)
	ctx.Response.Header.Set("Upgrade", "echo")
	ctx.Response.Header.Set("Connection", "Upgrade")
	ctx.Hijack(func(c net.Conn) { io.Copy(c, c) })
}

// fastWSEcho is /ws on fasthttp's API: the same coder/websocket echo as
// the net/http app's. fasthttp hands a handler the connection only once it
// has returned (Hijack), so the handshake runs then, on the hijacked
// connection, with no response of fasthttp's before it: Accept checks the
// request (its method, headers, same origin), writes the 101 or the error
// through hijackedWriter, and the echo follows.
func fastWSEcho(ctx *fasthttp.RequestCtx) {
	// The request is copied (fasthttpadaptor.ConvertRequest's would point
	// into ctx, which is reused once the handler returns, before Hijack's
	// function runs).
	r := &http.Request{
		Method: string(ctx.Method()), Host: string(ctx.Host()), RequestURI: string(ctx.RequestURI()),
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: http.Header{},
	}
	if !ctx.Request.Header.IsHTTP11() {
		r.Proto, r.ProtoMinor = "HTTP/1.0", 0
	}
	r.URL, _ = url.ParseRequestURI(r.RequestURI)
	ctx.Request.Header.VisitAll(func(k, v []byte) { r.Header.Add(string(k), string(v)) })
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(c net.Conn) {
		w := &hijackedWriter{c: c, h: http.Header{}}
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return // Accept has answered
		}
		echoMessages(context.Background(), ws)
	})
}

// hijackedWriter is the http.ResponseWriter a net/http WebSocket library
// needs, over a connection fasthttp has handed over: the head goes to the
// connection as the status is written (an error response closes it), and
// Hijack gives the connection back.
type hijackedWriter struct {
	c     net.Conn
	h     http.Header
	wrote bool
}

func (w *hijackedWriter) Header() http.Header { return w.h }

func (w *hijackedWriter) WriteHeader(code int) {
	if w.wrote {
		return
	}
	w.wrote = true
	if code != http.StatusSwitchingProtocols {
		w.h.Set("Connection", "close")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\n", code, http.StatusText(code))
	w.h.Write(&b)
	b.WriteString("\r\n")
	io.WriteString(w.c, b.String())
}

func (w *hijackedWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.c.Write(p)
}

func (w *hijackedWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return w.c, bufio.NewReadWriter(bufio.NewReader(w.c), bufio.NewWriter(w.c)), nil
}

// patternReader reads left bytes of the pattern (for /bytes).
type patternReader struct{ left, off int64 }

func (r *patternReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), r.left))
	for i := 0; i < n; i++ {
		p[i] = pattern[(r.off+int64(i))%4096%int64(len(pattern))]
	}
	r.off += int64(n)
	r.left -= int64(n)
	return n, nil
}
