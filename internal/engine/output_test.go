package engine_test

import (
	"bufio"
	"github.com/waitron/waitron/internal/testutil"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/waitron/waitron/internal/engine"
)

// The output path: spooled output, direct writes, clients that go.

// TestOutbufOverflowSpoolsToDisk: output for a client that is not reading
// goes to a temporary file past outbuf_overflow, so the handler finishes
// (it is under outbuf_high_watermark) without holding 8 MiB in memory;
// the client then receives every byte, in order, and the file is removed.
func TestOutbufOverflowSpoolsToDisk(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("TMPDIR", dir)
	const size = 8 << 20
	returned := make(chan struct{})
	var once sync.Once
	s := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/small" {
			return
		}
		defer once.Do(func() { close(returned) })
		w.Header().Set("Content-Length", strconv.Itoa(size))
		buf := make([]byte, 64<<10)
		for i := 0; i < size/len(buf); i++ {
			for j := range buf {
				buf[j] = byte(i + j)
			}
			if _, err := w.Write(buf); err != nil {
				return
			}
		}
	}), "outbuf_overflow", "262144")
	c := s.dial(t)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	recv(t, returned)
	if names, _ := filepath.Glob(filepath.Join(dir, "waitron-out-*")); len(names) != 1 {
		t.Fatalf("spool files while the client is not reading: %v", names)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil || len(body) != size {
		t.Fatalf("read %d bytes: %v", len(body), err)
	}
	for i := 0; i < size/(64<<10); i++ {
		for j := 0; j < 64<<10; j++ {
			if body[i*(64<<10)+j] != byte(i+j) {
				t.Fatalf("byte %d differs", i*(64<<10)+j)
			}
		}
	}
	// The connection is still usable, and the file is gone.
	io.WriteString(c, "GET /small HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	resp, err = http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("next request: %v %v", resp, err)
	}
	io.Copy(io.Discard, resp.Body)
	testutil.WaitFor(t, "the spool file to be removed", func() bool { n, _ := filepath.Glob(filepath.Join(dir, "waitron-out-*")); return len(n) == 0 })
}

// TestDirectWriteKeepsOrder: a worker writes a response's pieces to the
// socket itself only while nothing of the connection waits in gnet. Here
// the first piece fills the socket, the rest is queued for a held event
// loop, the client then drains the socket, and the handler writes more:
// that must queue behind the rest, not overtake it on the now empty socket.
func TestDirectWriteKeepsOrder(t *testing.T) {
	const big, small = 32 << 20, 1000 // big: more than loopback socket buffers take (tcp_wmem max is often 4 MiB)
	entered, gateA, wroteA := make(chan struct{}), make(chan struct{}), make(chan struct{})
	gateB, wroteB := make(chan struct{}), make(chan struct{})
	s := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(big+small))
		close(entered)
		<-gateA
		a := make([]byte, big)
		for i := range a {
			a[i] = 'a' + byte(i%26)
		}
		w.Write(a)
		w.(http.Flusher).Flush()
		close(wroteA)
		<-gateB
		w.Write([]byte(strings.Repeat("B", small)))
		w.(http.Flusher).Flush()
		close(wroteB)
	}), "outbuf_overflow", "134217728", "outbuf_high_watermark", "134217728")
	c := s.dial(t)
	c.(*net.TCPConn).SetReadBuffer(16 << 10)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	<-entered // the request has left the loop for a worker
	handed, release := engine.HoldLoops(s.Server)
	released := false
	defer func() {
		if !released {
			release()
		}
	}()
	close(gateA)
	recv(t, wroteA)
	// Take exactly what reached the socket: with the loop held, only the
	// worker's own writes did, and the rest is queued.
	k := handed()
	if k == 0 || k >= big {
		t.Fatalf("the worker wrote %d of %d bytes itself; the test needs a partial write", k, big)
	}
	got := make([]byte, k)
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	head := strings.Index(string(got), "\r\n\r\n")
	if head < 0 {
		t.Fatalf("no response head in the first %d bytes", k)
	}
	close(gateB)
	recv(t, wroteB)
	release()
	released = true
	rest := make([]byte, head+4+big+small-int(k))
	if _, err := io.ReadFull(c, rest); err != nil {
		t.Fatal(err)
	}
	body := append(got[head+4:], rest...)
	for i := 0; i < big; i++ {
		if body[i] != 'a'+byte(i%26) {
			t.Fatalf("byte %d of the first piece is %q: a later write overtook it", i, body[i])
		}
	}
	if string(body[big:]) != strings.Repeat("B", small) {
		t.Fatalf("the last piece is not last")
	}
}

// TestCopyToGoneClient: io.Copy into the ResponseWriter (its ReadFrom)
// stops with an error once the client has reset the connection, rather
// than reading its source to the end, and the output spooled for the
// client (past outbuf_overflow) is removed.
func TestCopyToGoneClient(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("TMPDIR", dir)
	const limit = 1 << 30
	type outcome struct {
		n   int64
		err error
	}
	result := make(chan outcome, 1)
	s := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(w, io.LimitReader(zeros{}, limit))
		result <- outcome{n, err}
	}))
	c := s.dial(t)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if _, err := io.ReadFull(c, make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).SetLinger(0)
	c.Close()
	got := recv(t, result)
	if got.err == nil || got.n >= limit {
		t.Fatalf("io.Copy to a reset client: %d bytes, err %v; want an error before the end", got.n, got.err)
	}
	testutil.WaitFor(t, "the output spool to be removed", func() bool { n, _ := filepath.Glob(filepath.Join(dir, "waitron-*")); return len(n) == 0 })
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
