package engine_test

// The net/http contract: each check runs against waitron and against a
// plain net/http server serving the same handler, where the two should
// behave the same, over real loopback sockets.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"github.com/waitron/waitron/internal/testutil"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"weak"
)

// Every http.ResponseController method works, as on net/http.
func TestResponseControllerMethods(t *testing.T) {
	errs := make(chan string, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		later := time.Now().Add(time.Minute)
		var bad []string
		for name, err := range map[string]error{
			"SetReadDeadline":  rc.SetReadDeadline(later),
			"SetWriteDeadline": rc.SetWriteDeadline(later),
			"EnableFullDuplex": rc.EnableFullDuplex(),
			"Flush":            rc.Flush(),
		} {
			if err != nil {
				bad = append(bad, fmt.Sprintf("%s: %v", name, err))
			}
		}
		b, err := io.ReadAll(r.Body) // full duplex: reading after the flush
		if err != nil || string(b) != "abc" {
			bad = append(bad, fmt.Sprintf("body after flush: %q %v", b, err))
		}
		io.WriteString(w, "ok")
		errs <- strings.Join(bad, "; ")
	})
	for _, srv := range bothServers(t, h) {
		c := srv.dial(t)
		io.WriteString(c, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc")
		if _, body := testutil.ReadResponse(t, bufio.NewReader(c), http.MethodPost); body != "ok" {
			t.Errorf("%s: body %q", srv.name, body)
		}
		if e := recv(t, errs); e != "" {
			t.Errorf("%s: %s", srv.name, e)
		}
	}
}

// A write past the write deadline fails with os.ErrDeadlineExceeded —
// made after it, or blocked past it on a client that does not read — and
// the connection closes.
func TestWriteDeadline(t *testing.T) {
	errs := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		piece := bytes.Repeat([]byte("x"), 64<<10)
		if r.URL.Path == "/past" {
			rc.SetWriteDeadline(time.Now().Add(-time.Second))
			_, err := w.Write(bytes.Repeat(piece, 16)) // more than any buffer holds
			errs <- err
			return
		}
		rc.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		for i := 0; i < 1024; i++ { // 64 MiB at most: more than the socket buffers take
			if _, err := w.Write(piece); err != nil {
				errs <- err
				return
			}
		}
		errs <- nil
	})
	for _, srv := range bothServers(t, h) {
		for _, path := range []string{"/past", "/blocked"} {
			t.Run(srv.name+path, func(t *testing.T) {
				c := srv.dial(t)
				fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: a\r\n\r\n", path)
				var err error
				select {
				case err = <-errs:
				case <-time.After(ioTimeout):
					t.Fatal("the handler's write never failed")
				}
				if !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatalf("write error %v, want os.ErrDeadlineExceeded", err)
				}
				if _, err := io.Copy(io.Discard, c); err != nil && !errors.Is(err, syscall.ECONNRESET) {
					t.Fatalf("reading until the close: %v", err)
				}
			})
		}
	}
}

// http.ServerContextKey holds an *http.Server describing the options.
func TestServerContextKey(t *testing.T) {
	got := make(chan *http.Server, 1)
	s := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		srv, _ := r.Context().Value(http.ServerContextKey).(*http.Server)
		got <- srv
	}), "max_request_header_size", "4096", "channel_timeout", "30")
	c := s.dial(t)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	srv := recv(t, got)
	if srv == nil {
		t.Fatal("no *http.Server under http.ServerContextKey")
	}
	if srv.Addr != "127.0.0.1:0" || srv.MaxHeaderBytes != 4096 || srv.IdleTimeout != 30*time.Second || srv.WriteTimeout != 0 {
		t.Fatalf("Addr %q MaxHeaderBytes %d IdleTimeout %v WriteTimeout %v", srv.Addr, srv.MaxHeaderBytes, srv.IdleTimeout, srv.WriteTimeout)
	}
}

// http.CloseNotifier's channel fires when the client goes.
func TestCloseNotify(t *testing.T) {
	notified := make(chan bool, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cn, ok := w.(http.CloseNotifier)
		if !ok {
			notified <- false
			return
		}
		select {
		case <-cn.CloseNotify():
			notified <- true
		case <-time.After(5 * time.Second): // the handler's own cap
			notified <- false
		}
	})
	for _, srv := range bothServers(t, h) {
		c := srv.dial(t)
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		c.Close()
		if !<-notified {
			t.Errorf("%s: CloseNotify did not fire before the handler's cap", srv.name)
		}
	}
}

// io.Copy into a response with a declared Content-Length (a proxy or an
// echo copying a body) sends what was declared; a source with more gets
// http.ErrContentLength, as from Write, on waitron as on net/http. (With
// more, net/http's connection then ends short of the declared length;
// waitron's response is complete: docs/conformance.md.)
func TestCopyWithDeclaredLength(t *testing.T) {
	errs := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		src := strings.Repeat("x", 100000) // several reads' worth
		n := len(src)
		if r.URL.Path == "/more" {
			n = 70000
		}
		w.Header().Set("Content-Length", strconv.Itoa(n))
		_, err := io.Copy(w, strings.NewReader(src))
		errs <- err
	})
	for _, srv := range bothServers(t, h) {
		for _, c := range []struct {
			path string
			n    int
			err  error
		}{{"/exact", 100000, nil}, {"/more", 70000, http.ErrContentLength}} {
			conn := srv.dial(t)
			io.WriteString(conn, "GET "+c.path+" HTTP/1.1\r\nHost: a\r\n\r\n")
			if err := recv(t, errs); !errors.Is(err, c.err) {
				t.Errorf("%s %s: io.Copy returned %v, want %v", srv.name, c.path, err, c.err)
			}
			if srv.name == "net/http" && c.err != nil {
				continue
			}
			resp, body := testutil.ReadResponse(t, bufio.NewReader(conn), http.MethodGet)
			if resp.ContentLength != int64(c.n) || len(body) != c.n {
				t.Errorf("%s %s: Content-Length %d, %d body bytes, want %d", srv.name, c.path, resp.ContentLength, len(body), c.n)
			}
		}
	}
}

// TestServedRequestNotKept: once its response is out, nothing the server
// keeps for the connection holds the handler's *http.Request (or what it
// points to: its header map, its body, its context), however long the
// connection stays open, on either server. (A finalizer cannot show this:
// the request and its URL and ResponseWriter, allocated together, form a
// cycle, and a finalizer in a cycle never runs; a weak pointer can.)
func TestServedRequestNotKept(t *testing.T) {
	reqs := make(chan weak.Pointer[http.Request], 2)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqs <- weak.Make(r)
		io.WriteString(w, "ok")
	})
	for _, srv := range bothServers(t, h) {
		t.Run(srv.name, func(t *testing.T) {
			c := srv.dial(t)
			br := bufio.NewReader(c)
			io.WriteString(c, "GET /first HTTP/1.1\r\nHost: a\r\nX-Big: "+strings.Repeat("x", 1000)+"\r\n\r\n")
			testutil.ReadResponse(t, br, http.MethodGet)
			first := recv(t, reqs)
			// A second request on the same connection: the server has moved
			// past the first one, and the connection stays open.
			io.WriteString(c, "GET /second HTTP/1.1\r\nHost: a\r\n\r\n")
			testutil.ReadResponse(t, br, http.MethodGet)
			recv(t, reqs)
			testutil.WaitFor(t, "the first request to be collectable", func() bool {
				runtime.GC()
				return first.Value() == nil
			})
		})
	}
}

// TestCopyFileToResponse: a handler copying a regular file into its
// response (http.ServeFile, a range of it, io.Copy from an *os.File at an
// offset, and through an io.LimitedReader) sends the same bytes on both
// servers and leaves the file's offset where net/http leaves it (past
// what was copied); waitron sends the file with sendfile(2), as net/http
// does, not through its buffers.
func TestCopyFileToResponse(t *testing.T) {
	const size = 1<<20 + 123
	content := make([]byte, size)
	for i := range content {
		content[i] = byte(i % 251)
	}
	path := filepath.Join(t.TempDir(), "big.bin")
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	offsets := make(chan int64, 1)
	copyFrom := func(w http.ResponseWriter, start, n int64, limited bool) {
		f, err := os.Open(path)
		if err != nil {
			t.Error(err)
			return
		}
		defer f.Close()
		f.Seek(start, io.SeekStart)
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		var src io.Reader = f
		if limited {
			src = io.LimitReader(f, n)
		}
		if _, err := io.Copy(w, src); err != nil {
			t.Error(err)
		}
		pos, _ := f.Seek(0, io.SeekCurrent)
		offsets <- pos
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/serve", func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, path) })
	mux.HandleFunc("/copy", func(w http.ResponseWriter, r *http.Request) { copyFrom(w, 1000, size-1000, false) })
	mux.HandleFunc("/limited", func(w http.ResponseWriter, r *http.Request) { copyFrom(w, 5000, 300000, true) })
	ws := start(t, mux)
	std := httptest.NewServer(mux)
	t.Cleanup(std.Close)
	for _, srv := range []peerServer{{"waitron", ws.addr}, {"net/http", std.Listener.Addr().String()}} {
		c := srv.dial(t)
		br := bufio.NewReader(c)
		for _, tc := range []struct {
			req, want string
			status    int
			offset    int64 // the file's offset after the copy, -1: not asked
		}{
			{"GET /serve HTTP/1.1\r\nHost: a\r\n\r\n", string(content), 200, -1},
			{"GET /serve HTTP/1.1\r\nHost: a\r\nRange: bytes=100000-899999\r\n\r\n", string(content[100000:900000]), 206, -1},
			{"GET /copy HTTP/1.1\r\nHost: a\r\n\r\n", string(content[1000:]), 200, size},
			{"GET /limited HTTP/1.1\r\nHost: a\r\n\r\n", string(content[5000:305000]), 200, 305000},
		} {
			io.WriteString(c, tc.req)
			resp, body := testutil.ReadResponse(t, br, http.MethodGet)
			line, _, _ := strings.Cut(tc.req, "\r\n")
			if resp.StatusCode != tc.status || body != tc.want {
				i := 0
				for i < min(len(body), len(tc.want)) && body[i] == tc.want[i] {
					i++
				}
				t.Errorf("%s %q: status %d, %d bytes (want %d, %d), first difference at %d", srv.name, line, resp.StatusCode, len(body), tc.status, len(tc.want), i)
			}
			if tc.offset >= 0 {
				if got := recv(t, offsets); got != tc.offset {
					t.Errorf("%s %q: the file's offset after the copy is %d, want %d", srv.name, line, got, tc.offset)
				}
			}
		}
	}
	if n := ws.Stats().SentFromFile; n == 0 {
		t.Error("waitron sent none of the files with sendfile")
	}
}
