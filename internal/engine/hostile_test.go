package engine_test

import (
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/waitron/waitron/internal/engine"
	"github.com/waitron/waitron/internal/targetapp"
	"github.com/waitron/waitron/internal/testutil"
)

// trickle sends raw to c one byte every interval until it is sent or the
// server closes the connection; it reports what the server answered.
func trickle(c net.Conn, raw string, interval time.Duration) string {
	got := make(chan string, 1)
	go func() { b, _ := io.ReadAll(c); got <- string(b) }()
	for i := 0; i < len(raw); i++ {
		if _, err := c.Write([]byte{raw[i]}); err != nil {
			break
		}
		select {
		case s := <-got:
			return s
		case <-time.After(interval):
		}
	}
	return <-got
}

// TestSlowlorisHeads: 200 clients trickling their heads are answered 408
// and closed once request_header_timeout has passed since their first
// byte — the bytes they trickle meanwhile do not restart it — while
// another client is served. The server's clock is advanced, not waited
// for.
func TestSlowlorisHeads(t *testing.T) {
	s := start(t, nil, "connection_limit", "300") // request_header_timeout: 60 s
	const n = 200
	var conns []net.Conn
	answers := make(chan string, n)
	first := "GET / HTTP/1.1\r\nHost: a\r\nX-Slow: " + strings.Repeat("z", 100)
	for i := 0; i < n; i++ {
		c := s.dial(t)
		io.WriteString(c, first)
		conns = append(conns, c)
		go func() { b, _ := io.ReadAll(c); answers <- string(b) }()
	}
	read := s.waitRead(t, uint64(n*len(first)))
	engine.Advance(s.Server, 30*time.Second)
	for _, c := range conns {
		io.WriteString(c, "zz") // more of the head: the timer goes on
	}
	s.waitRead(t, read+2*n)
	c := s.dial(t)
	io.WriteString(c, "GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n")
	expectResponse(t, c, plaintextResp)
	engine.Advance(s.Server, 31*time.Second) // 61 s since their first byte
	want := errorResp(408, "The request did not arrive in time (request head not complete within request_header_timeout)")
	for i := 0; i < n; i++ {
		expectEqual(t, "trickling client", masked(<-answers), want)
	}
	if !strings.Contains(s.logs.String(), "closing connection: request head not complete within request_header_timeout") {
		t.Error("no log line saying why the connections were closed")
	}
}

// TestSlowlorisFillsConnectionLimit: tricklers occupying every slot are
// timed out, so a waiting client is still served.
func TestSlowlorisFillsConnectionLimit(t *testing.T) {
	s := start(t, nil, "connection_limit", "20")
	part := "GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("z", 100)
	for i := 0; i < 20; i++ {
		c := s.dial(t)
		io.WriteString(c, part)
	}
	s.waitRead(t, uint64(20*len(part)))
	c := s.dial(t) // the 21st: it waits for a slot
	io.WriteString(c, "GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n")
	testutil.WaitFor(t, "the limit to be reached", func() bool { return strings.Contains(s.logs.String(), "reached the connection limit") })
	engine.Advance(s.Server, 61*time.Second) // past request_header_timeout, within channel_timeout
	expectResponse(t, c, plaintextResp)
}

// TestSlowBodies: a body that trickles below request_body_min_rate, and
// one that stalls longer than request_body_timeout, are answered 408 and
// closed; nothing is executed.
func TestSlowBodies(t *testing.T) {
	s := start(t, nil) // request_body_timeout 60 s, request_body_min_rate 1024 B/s
	head := "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n"
	c := s.dial(t)
	io.WriteString(c, head+strings.Repeat("b", 1000))
	read := s.waitRead(t, uint64(len(head)+1000))
	engine.Advance(s.Server, 31*time.Second)
	io.WriteString(c, strings.Repeat("b", 1000)) // never stalled 60 s, but 2000 B in 62 s
	s.waitRead(t, read+1000)
	engine.Advance(s.Server, 31*time.Second)
	got, _ := io.ReadAll(c)
	expectEqual(t, "trickled body", masked(string(got)), errorResp(408, "The request did not arrive in time (request body slower than request_body_min_rate)"))

	c = s.dial(t)
	io.WriteString(c, head+strings.Repeat("b", 5000))
	s.waitRead(t, read+1000+uint64(len(head)+5000))
	engine.Advance(s.Server, 61*time.Second)
	got, _ = io.ReadAll(c)
	expectEqual(t, "stalled body", masked(string(got)), errorResp(408, "The request did not arrive in time (request body stalled longer than request_body_timeout)"))
}

// TestStalledReader: with threads=1, a client that stops reading a large
// response does not hold the only worker: its handler, blocked at
// outbuf_high_watermark, leaves the count of threads, so another client is
// served at once; at send_timeout the stalled connection is closed and
// its handler's write fails.
func TestStalledReader(t *testing.T) {
	s := start(t, nil, "threads", "1", "outbuf_high_watermark", "1048576", "outbuf_overflow", "1048576")
	stalled := s.dial(t)
	io.WriteString(stalled, "GET /bytes/1000000000 HTTP/1.1\r\nHost: a\r\n\r\n")
	io.ReadFull(stalled, make([]byte, 1000)) // it started, then the client stops reading
	testutil.WaitFor(t, "the handler to block", func() bool { return s.Stats().WritesBlocked == 1 })
	other := s.dial(t)
	io.WriteString(other, "GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n")
	expectResponse(t, other, plaintextResp)
	// A check that sees no progress since the previous one, send_timeout
	// (60 s) later, closes: at most a few, while the kernel's buffers fill.
	const logLine = "the client took no response bytes within send_timeout"
	for i := 0; i < 10 && !strings.Contains(s.logs.String(), logLine); i++ {
		engine.Advance(s.Server, 61*time.Second)
	}
	if !strings.Contains(s.logs.String(), logLine) {
		t.Error("no log line saying why the connection was closed")
	}
	testutil.WaitFor(t, "the blocked handler to be released", func() bool { return s.Stats().WritesBlocked == 0 })
}

// TestSlowReadersKeepNoWorker: as many clients as there are workers
// (threads=4) read large responses slowly — at 64 KiB/s, at 1 KiB/s, or
// not at all — each handler blocked at outbuf_high_watermark; plain
// requests are still answered at once, as on net/http, which gives every
// connection its goroutine. Both adapters.
func TestSlowReadersKeepNoWorker(t *testing.T) {
	std := httptest.NewServer(targetapp.NewWith(testCaps))
	t.Cleanup(std.Close)
	set := []string{"threads", "4", "outbuf_high_watermark", "1048576", "outbuf_overflow", "1048576", "channel_timeout", "3600"}
	type peer struct {
		name    string
		addr    string
		blocked func() bool
	}
	w, f := start(t, nil, set...), startFast(t, nil, set...)
	for _, rate := range []int{64 << 10, 1 << 10, 0} {
		for _, p := range []peer{
			{"waitron", w.addr, func() bool { return w.Stats().WritesBlocked == 4 }},
			{"waitron fasthttp", f.addr, func() bool { return f.Stats().WritesBlocked == 4 }},
			{"net/http", strings.TrimPrefix(std.URL, "http://"), nil},
		} {
			stop := make(chan struct{})
			var readers sync.WaitGroup
			for range 4 {
				c, err := net.Dial("tcp", p.addr)
				if err != nil {
					t.Fatal(err)
				}
				io.WriteString(c, "GET /bytes/1000000000 HTTP/1.1\r\nHost: a\r\n\r\n")
				io.ReadFull(c, make([]byte, 64<<10)) // started
				readers.Add(1)
				go func() { // a reader paced at rate (none: it reads no more), until stop
					defer readers.Done()
					defer c.Close()
					buf := make([]byte, max(rate/16, 1))
					for {
						select {
						case <-stop:
							return
						case <-time.After(time.Second / 16):
						}
						if rate > 0 {
							c.SetReadDeadline(time.Now().Add(ioTimeout))
							if _, err := io.ReadFull(c, buf); err != nil {
								return
							}
						}
					}
				}()
			}
			if p.blocked != nil {
				testutil.WaitFor(t, fmt.Sprintf("%s, %d B/s: four handlers to block", p.name, rate), p.blocked)
			}
			for i := range 3 {
				if got := roundTrip(t, p.addr, "GET /plaintext HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"); !strings.HasSuffix(got, "Hello, World!") {
					t.Fatalf("%s: probe %d behind four readers at %d B/s: %q", p.name, i, rate, got)
				}
			}
			close(stop)
			readers.Wait()
		}
	}
}

// TestSendTimeoutSteadyReader: send_timeout counts what the client takes,
// not what the server writes. Readers at 8, 32 and 128 KiB/s (of the
// server's clock, which the test moves) behind the server's send buffer —
// far less than a third of it between two checks, so the server writes
// nothing new to the socket for longer than send_timeout — are never cut;
// once one stops reading, it is cut at the first check send_timeout after
// its last read, and its access-log line says send_timeout and the bytes
// it took, not that the client went nor what was handed over. The client
// uses a real network's segment size (1460 bytes), so that its kernel
// acknowledges as it reads. Both adapters.
func TestSendTimeoutSteadyReader(t *testing.T) {
	dir := t.TempDir()
	set := func(name string) []string {
		return []string{"send_timeout", "10", "channel_timeout", "3600", "access_log", filepath.Join(dir, name)}
	}
	dialer := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) {
			syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_MAXSEG, 1460)
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 64<<10)
		})
	}}
	for i, s := range []*testServer{start(t, nil, set("std.log")...), startFast(t, nil, set("fast.log")...)} {
		log := filepath.Join(dir, []string{"std.log", "fast.log"}[i])
		for n, rate := range []int{8 << 10, 32 << 10, 128 << 10} {
			c, err := dialer.Dial("tcp", s.addr)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			c.SetDeadline(time.Now().Add(ioTimeout))
			target := fmt.Sprintf("/bytes/%d", 1000000000+n) // told apart in the log
			fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: a\r\n\r\n", target)
			io.ReadFull(c, make([]byte, 1<<20))
			testutil.WaitFor(t, "the handler to block", func() bool { return s.Stats().WritesBlocked == 1 })
			// Two minutes of checks 8 s apart (send_timeout 10 s), the
			// client taking 8 s worth of its rate before each.
			buf := make([]byte, 8*rate)
			for k := range 15 {
				if _, err := io.ReadFull(c, buf); err != nil {
					t.Fatalf("%d B/s, read %d: %v", rate, k, err)
				}
				engine.Advance(s.Server, 8*time.Second)
			}
			if got := s.Stats().Closed[engine.CloseSendTimeout]; got != uint64(n) {
				t.Fatalf("a steady reader at %d B/s was cut for send_timeout", rate)
			}
			// It stops reading: cut at a check past send_timeout from
			// the last bytes its kernel took (what was in flight when it
			// stopped, which takes real time to settle), the clock moving
			// on a check at a time meanwhile.
			testutil.WaitFor(t, "the close for send_timeout", func() bool {
				engine.Advance(s.Server, 8*time.Second)
				return s.Stats().Closed[engine.CloseSendTimeout] == uint64(n+1)
			})
			testutil.WaitFor(t, "the access-log line", func() bool {
				b, _ := os.ReadFile(log)
				return strings.Contains(string(b), "GET "+target+" HTTP/1.1")
			})
			b, _ := os.ReadFile(log)
			_, line, _ := strings.Cut(string(b), "GET "+target+" HTTP/1.1")
			line, _, _ = strings.Cut(line, "\n")
			if !strings.Contains(line, " close=send_timeout") {
				t.Errorf("%d B/s: access log: %q", rate, line)
			}
			// The bytes the client took, not those handed over or
			// declared: what it read (the head among them) and what its
			// kernel held for it.
			var bytes int64
			fmt.Sscan(strings.TrimPrefix(line, `" 200 `), &bytes)
			if read := int64(1<<20 + 15*8*rate); bytes < read-1024 || bytes > read+1<<20 {
				t.Errorf("%d B/s: %d bytes logged for a response cut after the client read %d: %q", rate, bytes, read, line)
			}
		}
	}
}

// TestPipeliningFlood: while a request is served, a client that keeps
// pipelining is cut off once it has queued more than
// max_request_header_size + inbuf_overflow bytes, with the reason logged;
// the request already running still completes for others to see.
func TestPipeliningFlood(t *testing.T) {
	s := start(t, nil, "max_request_header_size", "8192", "inbuf_overflow", "65536")
	c := s.dial(t)
	io.WriteString(c, "GET /delay/300 HTTP/1.1\r\nHost: a\r\n\r\n")
	req := []byte("GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n")
	flood := make(chan int64, 1)
	go func() {
		var n int64
		for n < 64<<20 { // bounded: 64 MiB at most
			k, err := c.Write(req)
			n += int64(k)
			if err != nil {
				break
			}
		}
		flood <- n
	}()
	io.Copy(io.Discard, c) // until the server closes
	if n := recv(t, flood); n >= 64<<20 {
		t.Fatalf("the server took all %d bytes of the flood", n)
	}
	testutil.WaitFor(t, "the reason to be logged", func() bool {
		return strings.Contains(s.logs.String(), "too many pipelined bytes while a request is served")
	})
}

// TestUploadFlood: 16 clients upload 2 MiB each at once with
// inbuf_overflow=64 KiB; every body is spooled to disk, echoed back intact,
// and no temporary file is left but the few kept for reuse.
func TestUploadFlood(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("TMPDIR", dir)
	s := start(t, nil, "inbuf_overflow", "65536", "threads", "4")
	const size = 2 << 20
	var wg sync.WaitGroup
	errs := make(chan string, 16)
	for i := 0; i < 16; i++ {
		c := s.dial(t)
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			body := strings.Repeat(string(rune('a'+i)), size)
			go io.WriteString(c, "POST /echo HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: 2097152\r\n\r\n"+body)
			b, err := io.ReadAll(c)
			if err != nil || !strings.HasSuffix(string(b), body) {
				errs <- "client " + string(rune('a'+i)) + ": bad echo"
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	// The files are kept for reuse (these 32 MiB are within the budget),
	// none with a name; once none is reused for a while, all are closed.
	if open, named := spoolFiles(t, dir); open > 16 || named != 0 {
		t.Errorf("%d spool files open, %d named", open, named)
	}
	testutil.WaitFor(t, "the idle spool files to be closed", func() bool {
		engine.Advance(s.Server, 11*time.Second)
		open, _ := spoolFiles(t, dir)
		return open == 0
	})
}

// TestResetsDuringAccept: clients that reset right after connecting, or
// after a partial request, leave no connection, no busy loop and no leak
// behind (waitress CVE-2024-49769), and others are still served.
func TestResetsDuringAccept(t *testing.T) {
	s := start(t, nil)
	for i := 0; i < 300; i++ {
		c, err := net.DialTimeout("tcp", s.addr, ioTimeout)
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 1 {
			io.WriteString(c, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\npartial")
		}
		c.(*net.TCPConn).SetLinger(0) // close with RST
		c.Close()
	}
	testutil.WaitFor(t, "every reset connection to be gone", func() bool { return s.Conns() == 0 })
	c := s.dial(t)
	io.WriteString(c, "GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n")
	expectResponse(t, c, plaintextResp)
}
