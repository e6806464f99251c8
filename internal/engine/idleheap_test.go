package engine_test

import (
	"log/slog"
	"net/netip"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/waitron/waitron/internal/engine"
	"github.com/waitron/waitron/internal/fastadapter"
	"github.com/waitron/waitron/internal/targetapp"
	"github.com/waitron/waitron/limits"
)

// BenchmarkIdleConnHeap measures what an idle keep-alive connection holds
// in the server's Go heap: b.N connections (1,000 to 8,000) to the target
// app, each after one request and its response, against the live heap
// before them, both after two collections. The client side is raw sockets
// (descriptors, no Go heap), so the figure is the server's own: waitron's
// conn and writer, gnet's connection, their buffers and map entries. The
// kernel's socket buffers are not in it (nor in the harness's RSS
// figure). Run with -benchtime 5000x for the figure docs/benchmarks.md
// gives:
//
//	go test ./engine -run X -bench IdleConnHeap -benchtime 5000x -count 5
func BenchmarkIdleConnHeap(b *testing.B) {
	for _, c := range []struct {
		name string
		mk   func(limits.Options, *slog.Logger) (*engine.Server, error)
	}{
		{"net/http", func(o limits.Options, log *slog.Logger) (*engine.Server, error) {
			return engine.New(targetapp.NewWith(testCaps), o, log)
		}},
		{"fasthttp", func(o limits.Options, log *slog.Logger) (*engine.Server, error) {
			return engine.NewFor(fastadapter.Adapter(targetapp.NewFastWith(testCaps)), o, log)
		}},
	} {
		b.Run(c.name, func(b *testing.B) { benchIdleHeap(b, c.mk) })
	}
}

func benchIdleHeap(b *testing.B, mk func(limits.Options, *slog.Logger) (*engine.Server, error)) {
	n := min(max(b.N, 1000), 8000) // under connection_limit, and the open-file limit with the client's
	srv := startServer(b, mk, nil, "connection_limit", "9000")
	ap, err := netip.ParseAddrPort(srv.addr)
	if err != nil {
		b.Fatal(err)
	}
	sa := &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	fds := make([]int, 0, n)
	defer func() { // before the server's shutdown (a cleanup)
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	req := []byte("GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n")
	// A connection's response is read in full (its Content-Length) before
	// it counts as idle.
	ask := func() int {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			b.Fatal(err)
		}
		tv := unix.Timeval{Sec: 10}
		_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
		if err := unix.Connect(fd, sa); err != nil {
			b.Fatal(err)
		}
		if _, err := unix.Write(fd, req); err != nil {
			b.Fatal(err)
		}
		var buf [512]byte
		got := 0
		for !strings.HasSuffix(string(buf[:got]), "Hello, World!") {
			k, err := unix.Read(fd, buf[got:])
			if err != nil || k == 0 {
				b.Fatalf("reading the response: %v (%q)", err, buf[:got])
			}
			got += k
		}
		return fd
	}
	fds = append(fds, ask()) // the first connection starts what every server has (workers, pools)
	before := liveHeap()
	for len(fds) < n+1 {
		fds = append(fds, ask())
	}
	after := liveHeap()
	if st := srv.Stats(); st.Open != int64(len(fds)) {
		b.Fatalf("%d connections open, want %d", st.Open, len(fds))
	}
	b.ReportMetric(float64(after-before)/float64(n), "B/conn")
	b.ReportMetric(0, "ns/op") // the figure is the heap, not the time
}

// liveHeap returns the bytes of live heap objects after two collections.
func liveHeap() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
