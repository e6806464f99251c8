package engine_test

import (
	"bufio"
	"bytes"
	"fmt"
	"github.com/waitron/waitron/internal/testutil"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/waitron/waitron/internal/engine"
)

// TestHandlerFaults covers handlers that break their own promises.
func TestHandlerFaults(t *testing.T) {
	late := make(chan error, 1)
	release := make(chan struct{})
	s := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/more": // writes past its own Content-Length: cut at the length
			w.Header().Set("Content-Length", "5")
			_, err := io.WriteString(w, "hello world")
			w.Header().Set("X-Ignored", fmt.Sprint(err)) // too late to show up
			if err != http.ErrContentLength {
				panic(fmt.Sprint("Write past Content-Length returned ", err))
			}
		case "/fewer": // writes less than its Content-Length: the connection closes
			w.Header().Set("Content-Length", "10")
			io.WriteString(w, "hello")
		case "/late": // keeps the ResponseWriter and writes after returning
			go func() {
				<-release
				_, err := w.Write([]byte("too late"))
				late <- err
			}()
		case "/forever": // never returns (until the test ends): only its worker is lost
			<-release
		}
	}), "threads", "2")
	defer close(release)

	c := s.dial(t)
	io.WriteString(c, "GET /more HTTP/1.1\r\nHost: a\r\n\r\n")
	expectResponse(t, c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain; charset=utf-8\r\nDate: X\r\nServer: waitron\r\n\r\nhello")
	io.WriteString(c, "GET /late HTTP/1.1\r\nHost: a\r\n\r\n") // still usable after /more
	expectResponse(t, c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nDate: X\r\nServer: waitron\r\n\r\n")
	release <- struct{}{}
	if err := recv(t, late); err == nil || !strings.Contains(err.Error(), "write after the handler returned") {
		t.Errorf("write after return: %v", err)
	}

	got := s.roundTrip(t, "GET /fewer HTTP/1.1\r\nHost: a\r\n\r\n")
	expectEqual(t, "fewer bytes than Content-Length", masked(got),
		"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nContent-Type: text/plain; charset=utf-8\r\nDate: X\r\nServer: waitron\r\n\r\nhello")
	if !strings.Contains(s.logs.String(), "handler wrote fewer bytes than its Content-Length") {
		t.Error("short response not logged")
	}

	stuck := s.dial(t)
	io.WriteString(stuck, "GET /forever HTTP/1.1\r\nHost: a\r\n\r\n")
	c2 := s.dial(t)
	io.WriteString(c2, "GET /more HTTP/1.1\r\nHost: a\r\n\r\n")
	expectResponse(t, c2, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain; charset=utf-8\r\nDate: X\r\nServer: waitron\r\n\r\nhello")
}

// TestNextRequestWhileHandlerFinishes: a client that sends its next request
// with a large body as soon as it has read a response, while the handler
// of that response has not returned yet, is served rather than taken for a
// pipelining flood; the body beyond inbuf_overflow goes to disk.
func TestNextRequestWhileHandlerFinishes(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	defer free()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Length", fmt.Sprint(len(b)))
		w.Write(b)
		if r.URL.Path == "/first" {
			w.(http.Flusher).Flush()
			<-release // the response is complete on the wire; the handler lingers
		}
	})
	// No tick: the finished first handler must wake the loop itself.
	s := startWith(t, h, engine.NoTickCollect, "max_request_header_size", "8192", "inbuf_overflow", "65536")
	c := s.dial(t)
	io.WriteString(c, "POST /first HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nok")
	expectResponse(t, c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain; charset=utf-8\r\nDate: X\r\nServer: waitron\r\n\r\nok")
	body := strings.Repeat("n", 1<<20) // far over max_request_header_size + inbuf_overflow
	sent := make(chan error, 1)
	go func() {
		_, err := io.WriteString(c, "POST /second HTTP/1.1\r\nHost: a\r\nContent-Length: 1048576\r\n\r\n"+body)
		sent <- err
	}()
	if err := recv(t, sent); err != nil {
		t.Fatalf("sending the second request: %v", err)
	}
	serverRead(t, c) // all of it is with the server while the first handler runs
	free()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("second response: %v", err)
	}
	got, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || err != nil || string(got) != body {
		t.Fatalf("second response: %s, %d body bytes, %v", resp.Status, len(got), err)
	}
	if strings.Contains(s.logs.String(), "too many pipelined bytes") {
		t.Error("the second request was taken for a flood")
	}
}

// TestReadAheadWaitsItsTurn: a request read while another is served gets
// its 100 Continue only once the response before it is complete, and a
// malformed request read ahead is answered 400 after that response.
func TestReadAheadWaitsItsTurn(t *testing.T) {
	s := startWith(t, nil, engine.NoTickCollect)
	c := s.dial(t)
	io.WriteString(c, "GET /delay/200 HTTP/1.1\r\nHost: a\r\n\r\n"+
		"POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("first response: %v %v", resp, err)
	}
	io.Copy(io.Discard, resp.Body)
	expectResponse(t, br, "HTTP/1.1 100 Continue\r\n\r\n")
	io.WriteString(c, "hello")
	expectResponse(t, br, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: application/octet-stream\r\nDate: X\r\nServer: waitron\r\n\r\nhello")

	c = s.dial(t)
	io.WriteString(c, "GET /delay/200 HTTP/1.1\r\nHost: a\r\n\r\nPOST / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\nGET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n")
	br = bufio.NewReader(c)
	resp, err = http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("first response: %v %v", resp, err)
	}
	io.Copy(io.Discard, resp.Body)
	rest, _ := io.ReadAll(br)
	expectEqual(t, "after the delayed response", masked(string(rest)), errorResp(400, "Content-Length is invalid"))
}

// TestPipelinedBurst: a burst of pipelined requests (more than one worker
// batch, with a body and a HEAD among them) is answered in order, and
// nothing after a request that asks to close is executed.
func TestPipelinedBurst(t *testing.T) {
	var ran sync.Map
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ran.Store(r.URL.RawQuery, true)
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.RawQuery, b)
	})
	s := start(t, h)
	c := s.dial(t)
	var burst strings.Builder
	var want []string
	for i := 0; i < 70; i++ {
		switch {
		case i == 40:
			fmt.Fprintf(&burst, "POST /?%d HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody", i)
			want = append(want, fmt.Sprintf("POST %d body", i))
		case i == 50:
			fmt.Fprintf(&burst, "HEAD /?%d HTTP/1.1\r\nHost: a\r\n\r\n", i)
			want = append(want, "")
		case i == 60:
			fmt.Fprintf(&burst, "GET /?%d HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", i)
			want = append(want, fmt.Sprintf("GET %d ", i))
		default:
			fmt.Fprintf(&burst, "GET /?%d HTTP/1.1\r\nHost: a\r\n\r\n", i)
			if i < 60 {
				want = append(want, fmt.Sprintf("GET %d ", i))
			}
		}
	}
	io.WriteString(c, burst.String())
	br := bufio.NewReader(c)
	for i, w := range want {
		method := "GET"
		if i == 50 {
			method = "HEAD"
		}
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		if string(b) != w {
			t.Fatalf("response %d: %q, want %q", i, b, w)
		}
	}
	if rest, _ := io.ReadAll(br); len(rest) > 0 {
		t.Fatalf("bytes after the closing response: %q", rest)
	}
	for i := 61; i < 70; i++ {
		if _, ok := ran.Load(fmt.Sprint(i)); ok {
			t.Errorf("request %d, after Connection: close, was executed", i)
		}
	}
}

// TestSpoolFileReusedAfterSendfile: a body echoed from its spool file
// with sendfile leaves references to the file's pages in the socket's
// queue. Client a does not read its echo; the file goes back to the cache
// and client b's body is spooled into it; a then reads, and must get its
// own bytes, not b's (the file is emptied before reuse, never written
// over in place).
func TestSpoolFileReusedAfterSendfile(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("TMPDIR", dir)
	s := start(t, nil, "inbuf_overflow", "65536", "threads", "2")
	const size = 2 << 20
	post := func(c net.Conn, fill byte, closes bool) {
		conn := ""
		if closes {
			conn = "Connection: close\r\n"
		}
		body := bytes.Repeat([]byte{fill}, size)
		go func() {
			io.WriteString(c, "POST /echo HTTP/1.1\r\nHost: a\r\n"+conn+"Content-Length: 2097152\r\n\r\n")
			c.Write(body)
		}()
	}
	served := func() (n uint64) {
		for _, d := range s.Stats().Durations {
			n += d
		}
		return n
	}
	a := s.dial(t)
	post(a, 'a', false)
	testutil.WaitFor(t, "a's echo to be handed over", func() bool { return served() == 1 })
	if s.Stats().SentFromFile == 0 {
		t.Fatal("a's echo did not go out with sendfile: nothing to test")
	}
	b := s.dial(t)
	post(b, 'b', true)
	got, err := io.ReadAll(b)
	if err != nil || !bytes.HasSuffix(got, bytes.Repeat([]byte{'b'}, size)) {
		t.Fatalf("b's echo: %d bytes, %v", len(got), err)
	}
	if open, _ := spoolFiles(t, dir); open != 1 {
		t.Fatalf("%d spool files open, want 1 (b's body in a's file)", open)
	}
	resp, err := http.ReadResponse(bufio.NewReader(a), nil)
	if err != nil {
		t.Fatal(err)
	}
	echo, err := io.ReadAll(io.LimitReader(resp.Body, size))
	if err != nil || len(echo) != size {
		t.Fatalf("a's echo: %d bytes, %v", len(echo), err)
	}
	if i := bytes.IndexFunc(echo, func(r rune) bool { return r != 'a' }); i >= 0 {
		t.Fatalf("a's echo has %q at byte %d: another body's bytes", echo[i], i)
	}
}
