package adapter

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/waitron/waitron/codec"
)

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
	if files, _ := filepath.Glob("../codec/testdata/trailer_*.http"); len(files) > 0 {
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
	proxy, err := NewProxy("127.0.0.1", 1, []string{"x-forwarded-for", "forwarded"}, true, false)
	if err != nil {
		f.Fatal(err)
	}
	cfg := &Config{Ident: "waitron", URLScheme: "http", Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Proxy: proxy}
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
			x := &Exchange{Head: &h, Framing: rd.Framing(), Remote: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4},
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
