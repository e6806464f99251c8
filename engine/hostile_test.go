package engine_test

import (
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
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
// and closed once request_header_timeout passes, while another client is
// served meanwhile.
func TestSlowlorisHeads(t *testing.T) {
	s := start(t, nil, "request_header_timeout", "1")
	const n = 200
	var wg sync.WaitGroup
	answers := make(chan string, n)
	for i := 0; i < n; i++ {
		c := s.dial(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers <- trickle(c, "GET / HTTP/1.1\r\nHost: a\r\nX-Slow: "+strings.Repeat("z", 200)+"\r\n\r\n", 100*time.Millisecond)
		}()
	}
	c := s.dial(t)
	io.WriteString(c, "GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n")
	expectResponse(t, c, plaintextResp)
	wg.Wait()
	close(answers)
	want := errorResp(408, "The request did not arrive in time (request head not complete within request_header_timeout)")
	for a := range answers {
		expectEqual(t, "trickling client", masked(a), want)
	}
	if !strings.Contains(s.logs.String(), "closing connection: request head not complete within request_header_timeout") {
		t.Error("no log line saying why the connections were closed")
	}
}

// TestSlowlorisFillsConnectionLimit: tricklers occupying every slot are
// timed out, so a waiting client is still served.
func TestSlowlorisFillsConnectionLimit(t *testing.T) {
	s := start(t, nil, "request_header_timeout", "1", "connection_limit", "20")
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		c := s.dial(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			trickle(c, "GET / HTTP/1.1\r\nHost: a\r\nX: "+strings.Repeat("z", 100), 100*time.Millisecond)
		}()
	}
	waitFor(t, "20 connections", func() bool { return s.Conns() == 20 })
	c := s.dial(t) // the 21st: it waits for a slot
	io.WriteString(c, "GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n")
	waitFor(t, "the limit to be reached", func() bool { return strings.Contains(s.logs.String(), "reached the connection limit") })
	expectResponse(t, c, plaintextResp)
	wg.Wait()
}

// TestSlowBodies: a body that trickles below request_body_min_rate, and
// one that stalls, are answered 408 and closed; nothing is executed.
func TestSlowBodies(t *testing.T) {
	s := start(t, nil, "request_body_timeout", "1", "request_body_min_rate", "1000")
	head := "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n"
	c := s.dial(t)
	io.WriteString(c, head)
	got := trickle(c, strings.Repeat("b", 1000), 100*time.Millisecond)
	expectEqual(t, "trickled body", masked(got), errorResp(408, "The request did not arrive in time (request body slower than request_body_min_rate)"))
	c = s.dial(t)
	io.WriteString(c, head+strings.Repeat("b", 5000))
	got2, _ := io.ReadAll(c)
	expectEqual(t, "stalled body", masked(string(got2)), errorResp(408, "The request did not arrive in time (request body stalled longer than request_body_timeout)"))
}

// TestStalledReader: with threads=1, a client that stops reading a large
// response blocks the handler at outbuf_high_watermark only until
// send_timeout; then its connection is closed, the worker is free, and
// another client is served.
func TestStalledReader(t *testing.T) {
	s := start(t, nil, "threads", "1", "send_timeout", "1", "outbuf_high_watermark", "1048576", "outbuf_overflow", "1048576")
	stalled := s.dial(t)
	io.WriteString(stalled, "GET /bytes/1000000000 HTTP/1.1\r\nHost: a\r\n\r\n")
	io.ReadFull(stalled, make([]byte, 1000)) // it started, then the client stops reading
	other := s.dial(t)
	io.WriteString(other, "GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n")
	expectResponse(t, other, plaintextResp)
	waitFor(t, "the send_timeout log line", func() bool {
		return strings.Contains(s.logs.String(), "the client took no response bytes within send_timeout")
	})
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
	if n := <-flood; n >= 64<<20 {
		t.Fatalf("the server took all %d bytes of the flood", n)
	}
	waitFor(t, "the reason to be logged", func() bool {
		return strings.Contains(s.logs.String(), "too many pipelined bytes while a request is served")
	})
}

// TestUploadFlood: 16 clients upload 2 MiB each at once with
// inbuf_overflow=64 KiB; every body is spooled to disk, echoed back intact,
// and no temporary file is left.
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
	waitFor(t, "every spool file to be removed", func() bool {
		n, _ := filepath.Glob(filepath.Join(dir, "*"))
		return len(n) == 0
	})
}
