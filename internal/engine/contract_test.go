package engine_test

// The net/http contract: each check runs against waitron and against a
// plain net/http server serving the same handler, where the two should
// behave the same, over real loopback sockets.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"github.com/waitron/waitron/internal/testutil"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// peerServer is a server under a contract test: waitron or net/http.
type peerServer struct {
	name string
	addr string
}

// bothServers starts h on waitron (with the options in set) and on a plain
// net/http server, and returns both.
func bothServers(t *testing.T, h http.Handler, set ...string) []peerServer {
	t.Helper()
	w := start(t, h, set...)
	std := httptest.NewUnstartedServer(h)
	std.Config.ErrorLog = log.New(io.Discard, "", 0)
	std.Start()
	t.Cleanup(std.Close)
	return []peerServer{{"waitron", w.addr}, {"net/http", std.Listener.Addr().String()}}
}

func (p peerServer) dial(t *testing.T) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", p.addr, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(ioTimeout))
	t.Cleanup(func() { c.Close() })
	return c
}

// headHandlers are HEAD handlers whose framing net/http decides without a
// body: writing nothing, flushing, and writing more than one piece
// (send_bytes, net/http's buffer).
var headHandlers = map[string]http.HandlerFunc{
	"nothing": func(w http.ResponseWriter, r *http.Request) {},
	"flush": func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.(http.Flusher).Flush()
	},
	"large": func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write(bytes.Repeat([]byte("x"), 200<<10))
	},
	"small": func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "hello")
	},
}

func headMux() *http.ServeMux {
	mux := http.NewServeMux()
	for name, h := range headHandlers {
		mux.Handle("/"+name, h)
	}
	mux.HandleFunc("/plaintext", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "Hello, World!") })
	return mux
}

// A HEAD response carries no body bytes and no framing a body would need:
// the next response on the connection starts right after its head.
func TestHeadResponseFraming(t *testing.T) {
	for _, srv := range bothServers(t, headMux()) {
		for name := range headHandlers {
			t.Run(srv.name+"/"+name, func(t *testing.T) {
				for _, minor := range []string{"1.1", "1.0"} {
					c := srv.dial(t)
					keep := ""
					if minor == "1.0" {
						keep = "Connection: keep-alive\r\n"
					}
					fmt.Fprintf(c, "HEAD /%s HTTP/%s\r\nHost: a\r\n%s\r\nGET /plaintext HTTP/%s\r\nHost: a\r\n%s\r\n", name, minor, keep, minor, keep)
					br := bufio.NewReader(c)
					head, body := testutil.ReadResponse(t, br, http.MethodHead)
					if head.StatusCode != 200 || body != "" || len(head.TransferEncoding) > 0 {
						t.Fatalf("HTTP/%s HEAD: status %d, Transfer-Encoding %q, body %q", minor, head.StatusCode, head.TransferEncoding, body)
					}
					if cl := head.Header.Get("Content-Length"); cl != "" && name != "small" {
						t.Errorf("HTTP/%s HEAD: Content-Length %q for a body the server could not count", minor, cl)
					}
					if name == "small" && head.Header.Get("Content-Length") != "5" {
						t.Errorf("HTTP/%s HEAD: Content-Length %q, want 5 (the body written, counted)", minor, head.Header.Get("Content-Length"))
					}
					get, body := testutil.ReadResponse(t, br, http.MethodGet)
					if get.StatusCode != 200 || body != "Hello, World!" {
						t.Fatalf("HTTP/%s GET after HEAD: status %d, body %q", minor, get.StatusCode, body)
					}
				}
			})
		}
	}
}

// A Go client alternating HEAD and GET on one connection: no error, no
// second connection, and no "Unsolicited response" from the Transport.
func TestHeadThenGetOneConnection(t *testing.T) {
	var logged bytes.Buffer
	prev := log.Writer()
	log.SetOutput(&logged) // the Transport logs stray bytes through the standard logger
	t.Cleanup(func() { log.SetOutput(prev) })
	for _, srv := range bothServers(t, headMux()) {
		t.Run(srv.name, func(t *testing.T) {
			var dials atomic.Int64
			tr := &http.Transport{MaxConnsPerHost: 1, DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				dials.Add(1)
				return (&net.Dialer{}).DialContext(ctx, network, addr)
			}}
			defer tr.CloseIdleConnections()
			cl := &http.Client{Transport: tr, Timeout: ioTimeout}
			names := []string{"nothing", "flush", "large"}
			for i := 0; i < 300; i++ {
				resp, err := cl.Head("http://" + srv.addr + "/" + names[i%len(names)])
				if err != nil {
					t.Fatalf("HEAD %d: %v", i, err)
				}
				resp.Body.Close()
				resp, err = cl.Get("http://" + srv.addr + "/plaintext")
				if err != nil {
					t.Fatalf("GET %d: %v", i, err)
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || string(b) != "Hello, World!" {
					t.Fatalf("GET %d: %q, %v", i, b, err)
				}
			}
			if n := dials.Load(); n != 1 {
				t.Errorf("%d connections for 300 HEAD→GET pairs, want 1", n)
			}
		})
	}
	if strings.Contains(logged.String(), "Unsolicited") {
		t.Errorf("the Transport logged: %s", logged.String())
	}
}

// OPTIONS * is answered by the server itself: 200, Content-Length 0, the
// connection kept, the handler never called.
func TestOptionsStar(t *testing.T) {
	var called atomic.Int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		called.Add(1)
		io.WriteString(w, "handler")
	})
	for _, srv := range bothServers(t, h) {
		t.Run(srv.name, func(t *testing.T) {
			c := srv.dial(t)
			io.WriteString(c, "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n")
			br := bufio.NewReader(c)
			resp, body := testutil.ReadResponse(t, br, http.MethodOptions)
			if resp.StatusCode != 200 || body != "" || resp.Header.Get("Content-Length") != "0" {
				t.Fatalf("OPTIONS *: status %d, Content-Length %q, body %q", resp.StatusCode, resp.Header.Get("Content-Length"), body)
			}
			if _, body := testutil.ReadResponse(t, br, http.MethodGet); body != "handler" {
				t.Fatalf("GET after OPTIONS *: %q", body)
			}
		})
	}
	if called.Load() != 2 {
		t.Errorf("handler called %d times, want 2 (only the GETs)", called.Load())
	}
}

// A chunked request is shown to the handler as net/http shows it, although
// waitron has the whole body before the handler runs.
func TestChunkedRequestAsNetHTTPShowsIt(t *testing.T) {
	type seen struct {
		te      string
		length  int64
		body    string
		trailer string
	}
	got := make(chan seen, 2)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{strings.Join(r.TransferEncoding, ","), r.ContentLength, string(b), r.Trailer.Get("X-Sum")}
	})
	var views []seen
	for _, srv := range bothServers(t, h) {
		c := srv.dial(t)
		io.WriteString(c, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Sum: 9\r\n\r\n")
		testutil.ReadResponse(t, bufio.NewReader(c), http.MethodPost)
		views = append(views, <-got)
	}
	if want := (seen{"chunked", -1, "abc", "9"}); views[0] != want || views[1] != want {
		t.Fatalf("waitron saw %+v, net/http %+v, want %+v", views[0], views[1], want)
	}
}

// A handler (a proxy forwarding its backend's) writing 100 Continue after
// the server sent it: one 100 reaches the client. (net/http sends this
// handler's second 100 too; docs/conformance.md.)
func TestOneContinue(t *testing.T) {
	s := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		w.WriteHeader(http.StatusContinue)
		io.WriteString(w, "done")
	}))
	c := s.dial(t)
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("first line %q, %v; want 100 Continue", line, err)
	}
	if blank, _ := br.ReadString('\n'); blank != "\r\n" {
		t.Fatalf("100 Continue followed by %q", blank)
	}
	io.WriteString(c, "abc")
	resp, body := testutil.ReadResponse(t, br, http.MethodPost) // a second 100 would be read here
	if resp.StatusCode != 200 || body != "done" {
		t.Fatalf("final response %d %q", resp.StatusCode, body)
	}
}

// No 1xx reaches an HTTP/1.0 client (RFC 9110 §15.2), which net/http sends
// anyway (docs/conformance.md); an HTTP/1.1 client gets its 103.
func TestNoInterimResponseToHTTP10(t *testing.T) {
	s := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</a.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		io.WriteString(w, "body")
	}))
	for _, minor := range []string{"1.0", "1.1"} {
		c := s.dial(t)
		fmt.Fprintf(c, "GET / HTTP/%s\r\nHost: a\r\nConnection: close\r\n\r\n", minor)
		b, err := io.ReadAll(c)
		if err != nil {
			t.Fatal(err)
		}
		if has := strings.Contains(string(b), "103 Early Hints"); has != (minor == "1.1") {
			t.Errorf("HTTP/%s: 103 sent = %v:\n%s", minor, has, b)
		}
	}
}

// A client that closes its connection (FIN, as a Go client cancelling its
// request does, or RST) while its request runs ends the request's context
// with the default options, with context.Cause saying why; after a FIN the
// response still reaches the client.
func TestContextEndsWhenClientCloses(t *testing.T) {
	type ended struct {
		early bool
		cause error
	}
	ch := make(chan ended, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			ch <- ended{true, context.Cause(r.Context())}
		case <-time.After(5 * time.Second): // the handler's own cap
			ch <- ended{false, nil}
		}
		io.WriteString(w, "late")
	})
	for _, srv := range bothServers(t, h) {
		t.Run(srv.name+"/fin", func(t *testing.T) {
			c := srv.dial(t)
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
			c.(*net.TCPConn).CloseWrite()
			if e := recv(t, ch); !e.early || e.cause == nil {
				t.Fatalf("context not ended by the client's FIN before the handler's cap: %+v", e)
			}
			if _, body := testutil.ReadResponse(t, bufio.NewReader(c), http.MethodGet); body != "late" {
				t.Fatalf("response after the FIN: %q", body)
			}
		})
		t.Run(srv.name+"/reset", func(t *testing.T) {
			c := srv.dial(t)
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
			c.(*net.TCPConn).SetLinger(0)
			c.Close()
			if e := recv(t, ch); !e.early || e.cause == nil {
				t.Fatalf("context not ended by the client's reset before the handler's cap: %+v", e)
			}
		})
	}
}
