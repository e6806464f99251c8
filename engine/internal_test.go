package engine

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/waitron/waitron/limits"
)

// TestRecvBytes: recv_bytes is the most read from a socket at a time, so a
// 64 KiB body arrives in at least 64 reads with recv_bytes=1024 and in far
// fewer with the default, 65536.
func TestRecvBytes(t *testing.T) {
	reads := func(recv string) int64 {
		o := limits.Default()
		o.Set("listen", "127.0.0.1:0")
		o.Set("recv_bytes", recv)
		s, err := New(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) }), o, nil)
		if err != nil {
			t.Fatal(err)
		}
		go s.Serve()
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			s.Shutdown(ctx)
		}()
		c, err := net.Dial("tcp", s.Addrs()[0].String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 65536\r\nConnection: close\r\n\r\n"+strings.Repeat("r", 65536))
		io.ReadAll(c)
		var n int64
		s.loops.Range(func(_, v any) bool {
			n += v.(*loopConns).reads.Load()
			return true
		})
		return n
	}
	if n := reads("1024"); n < 64 {
		t.Errorf("recv_bytes=1024: %d reads for 64 KiB, want at least 64", n)
	}
	if n := reads("65536"); n >= 64 {
		t.Errorf("recv_bytes=65536: %d reads for 64 KiB, want far fewer than 64", n)
	}
}
