package fastadapter

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/waitron/waitron/codec"
	"github.com/waitron/waitron/internal/adapter"
	"github.com/waitron/waitron/internal/bufpool"
)

// discard is an adapter.Output that recycles what it is given.
type discard struct{ n int }

func (d *discard) SetWriteDeadline(time.Time) {}
func (d *discard) Hijack([][]byte) (net.Conn, []byte, error) {
	return nil, nil, http.ErrNotSupported
}
func (d *discard) Refuse(status int, detail string, head bool) (int64, error) {
	b := adapter.ErrorResponse(bufpool.GetSmall(), &adapter.Config{}, status, detail, head)
	return int64(len(b)), d.Send([][]byte{b}, true, false)
}
func (d *discard) Send(bufs [][]byte, last, keepAlive bool) error {
	for _, b := range bufs {
		d.n += len(b)
		bufpool.Put(b)
	}
	return nil
}

// allocCase is a typical request (as wrk or a browser sends it) with the
// default proxy rules and an Output that discards.
type allocCase struct {
	h             codec.Head
	fr            codec.Framing
	cfg           *adapter.Config
	remote, local net.Addr
	out           *discard
}

func newAllocCase(t testing.TB) *allocCase {
	t.Helper()
	raw := []byte("GET /plaintext?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: bench\r\n" +
		"Accept: */*\r\nAccept-Encoding: gzip\r\nConnection: keep-alive\r\n\r\n")
	c := &allocCase{out: &discard{}}
	n, fr, err := codec.ReadHead(raw, &c.h, 8192, 1<<20)
	if err != nil || n == 0 {
		t.Fatal(err)
	}
	proxy, err := adapter.NewProxy("", 1, nil, true, false)
	if err != nil {
		t.Fatal(err)
	}
	c.fr = fr
	c.remote = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
	c.local = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}
	c.cfg = &adapter.Config{Ident: "waitron", URLScheme: "http", Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Proxy: proxy}
	return c
}

// exchange returns a fresh Exchange for the request, as the engine makes
// them for a fasthttp handler.
func (c *allocCase) exchange() *adapter.Exchange {
	return &adapter.Exchange{Head: &c.h, Framing: c.fr, Remote: c.remote, Local: c.local, RemoteStr: "127.0.0.1:40000",
		LocalPort: "8080", Ctx: context.Background(), Out: c.out}
}

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

// maxFastPathAllocs is TestFastPathAllocs's record: it may only go down.
const maxFastPathAllocs = 1

// TestFastPathAllocs counts the allocations of the same request through
// the fasthttp adapter (its RequestCtx is pooled; the one allocation is
// the test's own Exchange).
func TestFastPathAllocs(t *testing.T) {
	c := newAllocCase(t)
	hello := []byte("Hello, World!")
	handler := func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("text/plain")
		ctx.SetBody(hello)
	}
	limit := float64(maxFastPathAllocs)
	if raceOn {
		limit = raceFastAllocs
	}
	c.check(t, testing.AllocsPerRun(1000, func() { Serve(c.cfg, handler, c.exchange()) }), limit)
}

// BenchmarkServe is the fasthttp adapter's whole path for one typical
// plaintext request (building the RequestCtx's request, the handler, the
// response's serialisation and hand-over): go test ./adapter/fastadapter -bench Serve.
func BenchmarkServe(b *testing.B) {
	c := newAllocCase(b)
	hello := []byte("Hello, World!")
	handler := func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("text/plain")
		ctx.SetBody(hello)
	}
	b.ReportAllocs()
	for b.Loop() {
		Serve(c.cfg, handler, c.exchange())
	}
}

// TestFastLoggerAfterReturn: a logger a fasthttp handler took from
// ctx.Logger() still logs once the handler has returned and its context
// went back to the pool, and after that context served another request
// (fasthttp forbids using ctx after the return; its own server survives
// it, and so must this one, not dereference a cleared Config).
func TestFastLoggerAfterReturn(t *testing.T) {
	c := newAllocCase(t)
	var buf bytes.Buffer
	c.cfg.Log = slog.New(slog.NewTextHandler(&buf, nil))
	var l fasthttp.Logger
	Serve(c.cfg, func(ctx *fasthttp.RequestCtx) { l = ctx.Logger() }, c.exchange())
	l.Printf("once returned")
	Serve(c.cfg, func(ctx *fasthttp.RequestCtx) {}, c.exchange())
	l.Printf("after the next request")
	if got := buf.String(); !strings.Contains(got, "once returned") || !strings.Contains(got, "after the next request") {
		t.Fatalf("log: %q", got)
	}
}

// TestUnexportedField: the fasthttp fields the adapter reads by offset
// are found with their types, and a name or type fasthttp does not have
// is recorded, so that CheckFasthttp (which NewServer calls first) fails
// with an error naming it.
func TestUnexportedField(t *testing.T) {
	var h fasthttp.RequestHeader
	h.SetContentLength(7)
	if got := *fastContentLength(&h); got != 7 {
		t.Fatalf("contentLength read at its offset: %d, want 7", got)
	}
	if err := CheckFasthttp(); err != nil {
		t.Fatalf("the fasthttp in go.mod: %v", err)
	}
	defer func(saved []string) { fieldsMissing = saved }(fieldsMissing)
	unexportedField[fasthttp.RequestHeader, int]("noSuchField")
	unexportedField[fasthttp.RequestHeader, string]("contentLength")
	err := CheckFasthttp()
	if err == nil || !strings.Contains(err.Error(), "RequestHeader.noSuchField") || !strings.Contains(err.Error(), testedFasthttp) {
		t.Fatalf("CheckFasthttp: %v, want an error naming the field and the version supported", err)
	}
}

// fastView is what a fasthttp handler can read of a request's head: the
// request line, the fields that frame, route or authorise it, and every
// value of each name in names (the head's). (A trailer field of a name the
// head lacks is for Peek to find, as on fasthttp's own server.)
func fastView(req *fasthttp.Request, names [][]byte) string {
	hd := &req.Header
	var b bytes.Buffer
	b.Write(hd.Method())
	b.WriteByte(' ')
	b.Write(hd.RequestURI())
	b.WriteByte(' ')
	b.Write(hd.Protocol())
	b.WriteString("\nhost=")
	b.Write(hd.Host())
	b.WriteString("\ntype=")
	b.Write(hd.ContentType())
	b.WriteString("\ncookie=")
	b.Write(hd.Peek("Cookie"))
	if hd.ConnectionClose() {
		b.WriteString("\nclose")
	}
	b.WriteString("\nlength=")
	b.WriteString(string(rune('0' + min(max(hd.ContentLength(), -2), 7) + 2)))
	for _, n := range names {
		for _, v := range hd.PeekAll(string(n)) {
			b.WriteByte('\n')
			b.Write(n)
			b.WriteString(": ")
			b.Write(v)
		}
	}
	return b.String()
}

// fuzzTrailerRequest makes a chunked request whose head carries the fuzzed
// field lines and whose trailer section the fuzzed trailer lines.
func fuzzTrailerRequest(head, trailer []byte) []byte {
	var b bytes.Buffer
	b.WriteString("POST /t HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n")
	b.Write(head)
	b.WriteString("\r\n1\r\nx\r\n0\r\n")
	b.Write(trailer)
	b.WriteString("\r\n")
	return b.Bytes()
}

// FuzzFastTrailer: no trailer section changes a field of the head that a
// fasthttp handler sees: a request read with its trailer is refused (a
// 400) or shows every name of the head, and Host, Content-Type, Cookie,
// Connection and the length, exactly as without it.
func FuzzFastTrailer(f *testing.F) {
	f.Add([]byte("X-Sum: 1\r\n"), []byte("X-Sum: 2\r\n"))
	f.Add([]byte("Referer: r\r\nCookie: a=1\r\n"), []byte("Referer: evil\r\ncookie: b=2\r\n"))
	f.Add([]byte("X-Forwarded-For: 203.0.113.1\r\n"), []byte("x-forwarded-for: 10.0.0.1\r\nForwarded: for=10.0.0.1\r\n"))
	f.Add([]byte("Trailer: X-Sum\r\n"), []byte("X-Sum: 1\r\nHost: evil\r\n"))
	f.Add([]byte(""), []byte("Content-Type: multipart/form-data; boundary=z\r\nConnection: close\r\n"))
	f.Add([]byte("User-Agent: u\r\n"), []byte("User-Agent: evil\r\nIf-None-Match: *\r\n"))
	if files, _ := filepath.Glob("../../codec/testdata/trailer_*.http"); len(files) > 0 {
		for _, name := range files {
			b, err := os.ReadFile(name)
			if err != nil {
				f.Fatal(err)
			}
			raw, _, _ := bytes.Cut(b, []byte("\n----------\n"))
			if _, t, ok := bytes.Cut(raw, []byte("\r\n0\r\n")); ok {
				f.Add([]byte(nil), bytes.TrimSuffix(t, []byte("\r\n")))
			}
		}
	}
	proxy, err := adapter.NewProxy("127.0.0.1", 1, []string{"x-forwarded-for", "forwarded"}, true, false)
	if err != nil {
		f.Fatal(err)
	}
	cfg := &adapter.Config{Ident: "waitron", URLScheme: "http", Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Proxy: proxy}
	f.Fuzz(func(t *testing.T, headFields, trailer []byte) {
		raw := fuzzTrailerRequest(headFields, trailer)
		var h codec.Head
		rd := codec.Reader{MaxHead: 1 << 16, MaxBody: 1 << 20}
		st, err := rd.Next(raw, &h)
		if err != nil || !st.Head {
			return
		}
		head := append([]byte(nil), raw[:st.N]...)
		h.Rebase(head)
		in := raw[st.N:]
		for !rd.Framing().Close && len(in) > 0 {
			st, err = rd.Next(in, nil)
			if err != nil {
				return
			}
			in = in[st.N:]
			if st.End || st.N == 0 {
				break
			}
		}
		if !st.End {
			return
		}
		tr, fields := rd.TakeTrailer()
		names := make([][]byte, 0, len(h.Fields))
		for _, fd := range h.Fields {
			// Not Trailer: fasthttp lists there the names the trailer
			// section carried as well as those announced, on its own
			// server too.
			if name := h.Bytes(fd.Name); !bytes.EqualFold(name, []byte("trailer")) {
				names = append(names, name)
			}
		}
		fill := func(withTrailer bool) (string, error) {
			fe := fastPool.Get().(*fastExchange)
			defer fe.release()
			fe.reinit()
			x := &adapter.Exchange{Head: &h, Framing: rd.Framing(), Remote: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4},
				Local: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80}, RemoteStr: "127.0.0.1:4", LocalPort: "80",
				Ctx: context.Background(), Out: &discard{}}
			if withTrailer {
				x.Trailer, x.TrailerFields = tr, fields
			}
			setConn(&fe.ctx, x)
			if err := fe.fillRequest(cfg, x); err != nil {
				return "", err
			}
			return fastView(&fe.ctx.Request, names), nil
		}
		without, err := fill(false)
		if err != nil {
			return // the head alone is refused
		}
		with, err := fill(true)
		if err != nil {
			if ce, ok := err.(*codec.Error); !ok || ce.Status != 400 {
				t.Fatalf("a refused trailer: %v", err)
			}
			return
		}
		if with != without {
			t.Fatalf("the trailer %q changed the head %q:\nwithout:\n%s\nwith:\n%s", trailer, headFields, without, with)
		}
	})
}
