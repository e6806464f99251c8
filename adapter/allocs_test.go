package adapter

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/waitron/waitron/codec"
	"github.com/waitron/waitron/internal/bufpool"
)

// discard is an Output that recycles what it is given.
type discard struct{ n int }

func (d *discard) SetWriteDeadline(time.Time) {}

func (d *discard) Hijack() (net.Conn, []byte, error) { return nil, nil, http.ErrNotSupported }

func (d *discard) Send(bufs [][]byte, last, keepAlive bool) error {
	for _, b := range bufs {
		d.n += len(b)
		bufpool.Put(b)
	}
	return nil
}

// maxRequestPathAllocs is the ceiling for TestRequestPathAllocs: lower it
// when the figure goes down, never raise it.
const maxRequestPathAllocs = 9

// TestRequestPathAllocs counts the allocations of the whole request path
// for a typical request (the head as wrk or a browser sends it) and a
// handler writing "Hello, World!" with a Content-Type: building the
// *http.Request, the ResponseWriter, the response head and the hand-over.
func TestRequestPathAllocs(t *testing.T) {
	raw := []byte("GET /plaintext?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: bench\r\n" +
		"Accept: */*\r\nAccept-Encoding: gzip\r\nConnection: keep-alive\r\n\r\n")
	var h codec.Head
	if _, err := codec.ParseHead(raw, &h, 8192); err != nil {
		t.Fatal(err)
	}
	fr, err := h.Frame(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := NewProxy("", 1, nil, true, false)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &Config{Ident: "waitron", URLScheme: "http", Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Proxy: proxy}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "Hello, World!")
	})
	remote := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
	local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}
	out := &discard{}
	allocs := testing.AllocsPerRun(1000, func() {
		x := &Exchange{Head: &h, Framing: fr, Remote: remote, Local: local, RemoteStr: "127.0.0.1:40000",
			LocalPort: "8080", Ctx: context.Background(), Out: out}
		Serve(cfg, handler, x)
	})
	if out.n == 0 {
		t.Fatal("nothing was sent")
	}
	t.Logf("%.0f allocations per request", allocs)
	if allocs > maxRequestPathAllocs+raceAllocs {
		t.Errorf("%.0f allocations per request, more than the recorded %d", allocs, maxRequestPathAllocs)
	}
}

// maxFastPathAllocs is TestFastPathAllocs's record: it may only go down.
const maxFastPathAllocs = 1

// TestFastPathAllocs counts the allocations of one plaintext request
// through the fasthttp adapter (its RequestCtx is pooled).
func TestFastPathAllocs(t *testing.T) {
	raw := []byte("GET /plaintext?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: bench\r\n" +
		"Accept: */*\r\nAccept-Encoding: gzip\r\nConnection: keep-alive\r\n\r\n")
	var h codec.Head
	n, fr, err := codec.ReadHead(raw, &h, 8192, 1<<20)
	if err != nil || n == 0 {
		t.Fatal(err)
	}
	proxy, err := NewProxy("", 1, nil, true, false)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &Config{Ident: "waitron", URLScheme: "http", Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Proxy: proxy}
	hello := []byte("Hello, World!")
	handler := func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("text/plain")
		ctx.SetBody(hello)
	}
	remote := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
	local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}
	out := &discard{}
	allocs := testing.AllocsPerRun(1000, func() {
		x := &Exchange{Head: &h, Framing: fr, Remote: remote, Local: local, RemoteStr: "127.0.0.1:40000",
			LocalPort: "8080", Ctx: context.Background(), Out: out}
		ServeFast(cfg, handler, x)
	})
	if out.n == 0 {
		t.Fatal("nothing was sent")
	}
	t.Logf("%.0f allocations per request", allocs)
	limit := float64(maxFastPathAllocs)
	if raceOn {
		limit = raceFastAllocs
	}
	if allocs > limit {
		t.Errorf("%.0f allocations per request, more than %.0f", allocs, limit)
	}
}
