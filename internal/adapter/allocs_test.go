package adapter

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/waitron/waitron/codec"
	"github.com/waitron/waitron/internal/bufpool"
)

// discard is an Output that recycles what it is given.
type discard struct{ n int }

func (d *discard) SetWriteDeadline(time.Time) {}

func (d *discard) Hijack([][]byte) (net.Conn, []byte, error) { return nil, nil, http.ErrNotSupported }
func (d *discard) Refuse(status int, detail string, head bool) (int64, error) {
	b := ErrorResponse(bufpool.GetSmall(), &Config{}, status, detail, head)
	return int64(len(b)), d.Send([][]byte{b}, true, false)
}

func (d *discard) Send(bufs [][]byte, last, keepAlive bool) error {
	for _, b := range bufs {
		d.n += len(b)
		bufpool.Put(b)
	}
	return nil
}

// maxRequestPathAllocs is the ceiling for TestRequestPathAllocs: lower it
// when the figure goes down, never raise it.
const maxRequestPathAllocs = 8

// allocCase is what both allocation tests serve: a typical head (as wrk or
// a browser sends it), the default proxy rules, and an Output that
// discards.
type allocCase struct {
	h             codec.Head
	fr            codec.Framing
	cfg           *Config
	remote, local net.Addr
	out           *discard
}

func newAllocCase(t *testing.T) *allocCase {
	t.Helper()
	raw := []byte("GET /plaintext?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: bench\r\n" +
		"Accept: */*\r\nAccept-Encoding: gzip\r\nConnection: keep-alive\r\n\r\n")
	c := &allocCase{out: &discard{}}
	n, fr, err := codec.ReadHead(raw, &c.h, 8192, 1<<20)
	if err != nil || n == 0 {
		t.Fatal(err)
	}
	proxy, err := NewProxy("", 1, nil, true, false)
	if err != nil {
		t.Fatal(err)
	}
	c.fr = fr
	c.cfg = &Config{Ident: "waitron", URLScheme: "http", Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Proxy: proxy}
	c.remote = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
	c.local = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}
	return c
}

// exchange returns a fresh Exchange for the request, as the engine makes
// them: for a net/http handler with its HTTPState in the same allocation,
// for a fasthttp handler without.
func (c *allocCase) exchange(forHTTP bool) *Exchange {
	x := Exchange{Head: &c.h, Framing: c.fr, Remote: c.remote, Local: c.local, RemoteStr: "127.0.0.1:40000",
		LocalPort: "8080", Ctx: context.Background(), Out: c.out}
	if !forHTTP {
		return &x
	}
	xs := &struct {
		x  Exchange
		hs HTTPState
	}{x: x}
	xs.x.HTTP = &xs.hs
	return &xs.x
}

// check reports the count and fails when it is over limit.
func (c *allocCase) check(t *testing.T, allocs, limit float64) {
	t.Helper()
	if c.out.n == 0 {
		t.Fatal("nothing was sent")
	}
	t.Logf("%.0f allocations per request", allocs)
	if allocs > limit {
		t.Errorf("%.0f allocations per request, more than %.0f", allocs, limit)
	}
}

// TestRequestPathAllocs counts the allocations of the whole request path
// for a typical request and a handler writing "Hello, World!" with a
// Content-Type: building the *http.Request, the ResponseWriter, the
// response head and the hand-over.
func TestRequestPathAllocs(t *testing.T) {
	c := newAllocCase(t)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "Hello, World!")
	})
	c.check(t, testing.AllocsPerRun(1000, func() { Serve(c.cfg, handler, c.exchange(true)) }), maxRequestPathAllocs+raceAllocs)
}

// BenchmarkServe is the net/http adapter's whole path for one typical
// plaintext request: go test ./adapter -bench Serve (and ./adapter/fastadapter
// for the fasthttp adapter's).
func BenchmarkServe(b *testing.B) {
	c := newAllocCase(&testing.T{})
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "Hello, World!")
	})
	b.ReportAllocs()
	for b.Loop() {
		Serve(c.cfg, handler, c.exchange(true))
	}
}
