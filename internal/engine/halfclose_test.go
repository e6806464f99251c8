package engine_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/waitron/waitron/internal/engine"
	"github.com/waitron/waitron/internal/targetapp"
	"github.com/waitron/waitron/internal/testutil"
)

// Half-closed clients and request bodies on the wire.

// TestHalfClose: a client that shuts down its sending side after its
// requests still receives every response (gnet alone would drop them),
// though its FIN ended the running request's context: the first handler
// answers only once it has seen that.
func TestHalfClose(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("/plaintext", targetapp.NewWith(testCaps))
	mux.HandleFunc("/wait", func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
		io.WriteString(w, "after the FIN\n")
	})
	s := startWith(t, mux, engine.NoTickCollect)
	c := s.dial(t).(*net.TCPConn)
	io.WriteString(c, "GET /wait HTTP/1.1\r\nHost: a\r\n\r\nGET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n")
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	want := "HTTP/1.1 200 OK\r\nContent-Length: 14\r\nContent-Type: text/plain; charset=utf-8\r\nDate: X\r\nServer: waitron\r\n\r\nafter the FIN\n" + plaintextResp
	expectEqual(t, "responses after half-close", masked(string(b)), want)
}

// TestHalfCloseAfterResponse: a client that half-closes after reading its
// response (which the worker wrote to the socket itself, so the loop may
// not yet have heard that it is complete) sees the server close at once,
// without a per-second tick: whichever the loop sees first, the
// response's end (recorded before the socket can be marked closed) or the
// close, it learns of both. Repeated, as the order varies.
func TestHalfCloseAfterResponse(t *testing.T) {
	s := startWith(t, nil, engine.NoTickCollect)
	for range 20 {
		c := s.dial(t).(*net.TCPConn)
		io.WriteString(c, "GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n")
		expectResponse(t, c, plaintextResp)
		if err := c.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		expectClosed(t, c)
	}
}

// TestPipelinedWhileServed: requests arriving one by one while the one
// before is served (not as one burst) are each answered in turn.
func TestPipelinedWhileServed(t *testing.T) {
	s := startWith(t, nil, engine.NoTickCollect)
	c := s.dial(t)
	br := bufio.NewReader(c)
	io.WriteString(c, "GET /delay/50 HTTP/1.1\r\nHost: a\r\n\r\n")
	serverRead(t, c)
	io.WriteString(c, "GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n")
	serverRead(t, c)
	io.WriteString(c, "GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n")
	expectResponse(t, br, "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 14\r\nDate: X\r\nServer: waitron\r\n\r\ndelayed 50 ms\n")
	expectResponse(t, br, plaintextResp)
	expectResponse(t, br, plaintextResp)
}

// spoolFiles counts the open descriptors of this process (the server
// under test runs in it) on files created in dir, and the names left in
// dir. Spool files are unlinked as soon as they are created.
func spoolFiles(t *testing.T, dir string) (open, named int) {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("listing /proc/self/fd: %v", err)
	}
	for _, fd := range fds {
		if target, err := os.Readlink("/proc/self/fd/" + fd.Name()); err == nil && strings.HasPrefix(target, dir+"/") {
			open++
		}
	}
	names, _ := filepath.Glob(filepath.Join(dir, "*"))
	return open, len(names)
}

// TestBodySpillsToDisk sends a 3 MiB body with inbuf_overflow at 64 KiB:
// the handler sees all of it from a temporary file, which has no name in
// the directory at any time. The file is kept for the next large body,
// which sees exactly its own bytes although the file is longer, and a
// goroutine the handler left reading the body gets an error, not the next
// body.
func TestBodySpillsToDisk(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("TMPDIR", dir)
	type files struct{ open, named int }
	during := make(chan files, 2)
	leaked := make(chan io.Reader, 1)
	s := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var f files
		f.open, f.named = spoolFiles(t, dir)
		during <- f
		n, err := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "%d %v %d", n, err, r.ContentLength)
		if r.URL.Path == "/leak" {
			leaked <- r.Body
		}
	}), "inbuf_overflow", "65536")
	upload := func(path string, size int, fill string) string {
		c := s.dial(t)
		go func() {
			fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n", path, size)
			io.WriteString(c, strings.Repeat(fill, size))
		}()
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("upload of %d bytes: %v", size, err)
		}
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if got := upload("/big", 3<<20, "z"); got != "3145728 <nil> 3145728" {
		t.Fatalf("3 MiB upload: handler saw %q", got)
	}
	if f := recv(t, during); f.open != 1 || f.named != 0 {
		t.Fatalf("during the request: %d open spool files, %d names in the directory; want 1 and 0", f.open, f.named)
	}
	if got := upload("/leak", 100000, "y"); got != "100000 <nil> 100000" {
		t.Fatalf("100 kB upload into the reused file: handler saw %q", got)
	}
	if f := recv(t, during); f.open != 1 || f.named != 0 {
		t.Fatalf("during the second request: %d open spool files, %d names; want the first file again, unnamed", f.open, f.named)
	}
	body := recv(t, leaked)
	if n, err := body.Read(make([]byte, 10)); n != 0 || err != http.ErrBodyReadAfterClose {
		t.Fatalf("reading a body after its handler returned: %d bytes, %v", n, err)
	}
	if open, named := spoolFiles(t, dir); open != 1 || named != 0 {
		t.Fatalf("after the requests: %d open spool files, %d names; want the one kept for reuse", open, named)
	}
}

// TestBodyInMemoryClosedAfterHandler: a body kept in memory cannot be read
// once its handler has returned (http.ErrBodyReadAfterClose, as net/http
// answers), and io.Copy from it delivers the whole body.
func TestBodyInMemoryClosedAfterHandler(t *testing.T) {
	leaked := make(chan io.Reader, 1)
	s := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/leak" {
			leaked <- r.Body
			return
		}
		io.Copy(w, r.Body)
	}))
	c := s.dial(t)
	body := strings.Repeat("0123456789", 10000)
	fmt.Fprintf(c, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(resp.Body); string(got) != body {
		t.Fatalf("echo of %d bytes came back as %d bytes", len(body), len(got))
	}
	got := s.roundTrip(t, "POST /leak HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
	if !strings.HasPrefix(got, "HTTP/1.1 200 OK") {
		t.Fatalf("leak request: %q", got)
	}
	r := recv(t, leaked)
	if n, err := r.Read(make([]byte, 10)); n != 0 || err != http.ErrBodyReadAfterClose {
		t.Fatalf("reading an in-memory body after its handler returned: %d bytes, %v", n, err)
	}
}

// TestUploadAbortRemovesSpool: a client that vanishes mid-upload leaves no
// temporary file behind, named or open.
func TestUploadAbortRemovesSpool(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("TMPDIR", dir)
	s := start(t, nil, "inbuf_overflow", "1024")
	c := s.dial(t)
	fmt.Fprintf(c, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\n%s", strings.Repeat("q", 200000))
	testutil.WaitFor(t, "a spool file", func() bool { open, _ := spoolFiles(t, dir); return open == 1 })
	c.(*net.TCPConn).SetLinger(0)
	c.Close()
	testutil.WaitFor(t, "the spool file to be closed", func() bool { open, named := spoolFiles(t, dir); return open == 0 && named == 0 })
}
