package engine_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	cws "github.com/coder/websocket"
	"github.com/gorilla/websocket"

	"github.com/waitron/waitron/internal/testutil"
)

// echoHijacker takes the connection, answers 101 itself and echoes lines
// until "quit". It reports the peer it saw and any error on errs.
func echoHijacker(errs chan<- error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		nc, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			errs <- fmt.Errorf("hijack: %w", err)
			return
		}
		defer nc.Close()
		if _, err := w.Write([]byte("x")); !errors.Is(err, http.ErrHijacked) {
			errs <- fmt.Errorf("Write after Hijack: %v, want http.ErrHijacked", err)
			return
		}
		fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\nX-Peer: %s\r\n\r\n", nc.RemoteAddr())
		brw.Flush()
		// A deadline works on the hijacked connection.
		nc.SetReadDeadline(time.Now().Add(-time.Second))
		if _, err := nc.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) && brw.Reader.Buffered() == 0 {
			errs <- fmt.Errorf("read past a deadline: %v", err)
			return
		}
		nc.SetReadDeadline(time.Time{})
		for {
			line, err := brw.ReadString('\n')
			if err != nil {
				errs <- fmt.Errorf("reading: %w", err)
				return
			}
			if line == "quit\n" {
				errs <- nil
				return
			}
			brw.WriteString("echo " + line)
			brw.Flush()
		}
	}
}

// A hijacking handler gets the socket with every byte the client sent
// after the request (here sent in the same write, before any answer), real
// addresses and working deadlines; nothing more of HTTP happens on it.
func TestHijackRaw(t *testing.T) {
	errs := make(chan error, 1)
	for _, srv := range bothServers(t, echoHijacker(errs)) {
		t.Run(srv.name, func(t *testing.T) {
			c := srv.dial(t)
			io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\nearly\n")
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 101 || resp.Header.Get("X-Peer") != c.LocalAddr().String() {
				t.Fatalf("status %d, peer %q (want %s)", resp.StatusCode, resp.Header.Get("X-Peer"), c.LocalAddr())
			}
			for _, line := range []string{"early\n", "GET / HTTP/1.1\n", "later\n"} {
				if line != "early\n" {
					io.WriteString(c, line)
				}
				got, err := br.ReadString('\n')
				if err != nil || got != "echo "+line {
					t.Fatalf("echo of %q: %q, %v", line, got, err)
				}
			}
			io.WriteString(c, "quit\n")
			if err := recv(t, errs); err != nil {
				t.Fatal(err)
			}
			expectClosed(t, br)
		})
	}
}

// A plain request (no Upgrade) hijacked with a request pipelined behind
// it: the pipelined bytes are in the hijacked reader, as with net/http.
func TestHijackKeepsPipelinedRequest(t *testing.T) {
	got := make(chan string, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		nc, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			got <- err.Error()
			return
		}
		defer nc.Close()
		line, _ := brw.ReadString('\n')
		got <- line
	})
	for _, srv := range bothServers(t, h) {
		c := srv.dial(t)
		io.WriteString(c, "GET /first HTTP/1.1\r\nHost: a\r\n\r\nGET /second HTTP/1.1\r\nHost: a\r\n\r\n")
		if line := recv(t, got); line != "GET /second HTTP/1.1\r\n" {
			t.Errorf("%s: the hijacked reader starts with %q", srv.name, line)
		}
	}
}

// A handler that answers 101 and returns without hijacking: no 101 leaves;
// the client gets a 500 and the connection closes.
func TestSwitchingProtocolsWithoutHijack(t *testing.T) {
	s := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Upgrade", "x")
		w.WriteHeader(http.StatusSwitchingProtocols)
		w.(http.Flusher).Flush()
	}))
	got := s.roundTrip(t, "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n")
	if !strings.HasPrefix(got, "HTTP/1.1 500 ") || strings.Contains(got, "101") {
		t.Fatalf("got %q", got)
	}
}

// gorilla/websocket and coder/websocket echo small and 1 MiB messages both
// ways and close cleanly, on waitron as on net/http.
func TestWebSocketLibraries(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	mux := http.NewServeMux()
	mux.HandleFunc("/gorilla", gorillaEcho)
	mux.HandleFunc("/coder", func(w http.ResponseWriter, r *http.Request) {
		ws, err := cws.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		ws.SetReadLimit(4 << 20)
		for {
			kind, msg, err := ws.Read(r.Context())
			if err != nil {
				return
			}
			if err := ws.Write(r.Context(), kind, msg); err != nil {
				return
			}
		}
	})
	for _, srv := range bothServers(t, mux) {
		t.Run(srv.name+"/gorilla", func(t *testing.T) {
			ws, resp, err := websocket.DefaultDialer.Dial("ws://"+srv.addr+"/gorilla", nil)
			if err != nil {
				t.Fatalf("dial: %v (%v)", err, resp)
			}
			defer ws.Close()
			ws.SetReadDeadline(time.Now().Add(ioTimeout))
			for _, msg := range [][]byte{[]byte("hello"), big} {
				if err := ws.WriteMessage(websocket.BinaryMessage, msg); err != nil {
					t.Fatal(err)
				}
				_, got, err := ws.ReadMessage()
				if err != nil || !bytes.Equal(got, msg) {
					t.Fatalf("echo of %d bytes: %d bytes, %v", len(msg), len(got), err)
				}
			}
			ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"))
			if _, _, err := ws.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
				t.Fatalf("close handshake: %v", err)
			}
		})
		t.Run(srv.name+"/coder", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
			defer cancel()
			ws, _, err := cws.Dial(ctx, "ws://"+srv.addr+"/coder", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer ws.CloseNow()
			ws.SetReadLimit(4 << 20)
			for _, msg := range [][]byte{[]byte("hello"), big} {
				if err := ws.Write(ctx, cws.MessageBinary, msg); err != nil {
					t.Fatal(err)
				}
				_, got, err := ws.Read(ctx)
				if err != nil || !bytes.Equal(got, msg) {
					t.Fatalf("echo of %d bytes: %d bytes, %v", len(msg), len(got), err)
				}
			}
			if err := ws.Close(cws.StatusNormalClosure, "bye"); err != nil {
				t.Fatalf("close handshake: %v", err)
			}
		})
	}
}

// 200 WebSockets open at once with threads=2 — each hijacked handler
// outside the count of threads — while plain requests are answered.
func TestManyWebSocketsFewThreads(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/plaintext", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "Hello, World!") })
	mux.HandleFunc("/ws", gorillaEcho)
	s := start(t, mux, "threads", "2", "connection_limit", "1000")
	const n = 200
	conns := make([]*websocket.Conn, 0, n)
	defer func() {
		for _, ws := range conns {
			ws.Close()
		}
	}()
	for i := 0; i < n; i++ {
		ws, _, err := websocket.DefaultDialer.Dial("ws://"+s.addr+"/ws", nil)
		if err != nil {
			t.Fatalf("websocket %d: %v", i, err)
		}
		conns = append(conns, ws)
		if i%50 == 49 { // plain requests are served meanwhile
			c := s.dial(t)
			io.WriteString(c, "GET /plaintext HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
			if _, body := readResponse(t, bufio.NewReader(c), http.MethodGet); body != "Hello, World!" {
				t.Fatalf("plain request with %d websockets open: %q", i+1, body)
			}
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i, ws := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ws.SetReadDeadline(time.Now().Add(ioTimeout))
			msg := fmt.Sprintf("message %d", i)
			if err := ws.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
				errs <- err
				return
			}
			if _, got, err := ws.ReadMessage(); err != nil || string(got) != msg {
				errs <- fmt.Errorf("websocket %d: %q, %v", i, got, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Hijacked connections leave the server's count (connection_limit).
	testutil.WaitFor(t, "the server to count no connection", func() bool { return s.Conns() == 0 })
}

// gorillaEcho serves a gorilla/websocket echo until the client closes.
func gorillaEcho(w http.ResponseWriter, r *http.Request) {
	ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer ws.Close()
	for {
		kind, msg, err := ws.ReadMessage()
		if err != nil {
			return
		}
		if err := ws.WriteMessage(kind, msg); err != nil {
			return
		}
	}
}

// echoOnce dials a WebSocket at url, echoes one message and closes.
func echoOnce(t *testing.T, url string) {
	t.Helper()
	// As a browser would: an Origin of the page's host, which the
	// upgrader checks against the request's Host (gorilla's default).
	host, _, _ := strings.Cut(strings.TrimPrefix(url, "ws://"), "/")
	ws, resp, err := websocket.DefaultDialer.Dial(url, http.Header{"Origin": {"http://" + host}})
	if err != nil {
		t.Fatalf("dial %s: %v (%v)", url, err, resp)
	}
	defer ws.Close()
	ws.SetReadDeadline(time.Now().Add(ioTimeout))
	if err := ws.WriteMessage(websocket.TextMessage, []byte("through")); err != nil {
		t.Fatal(err)
	}
	if _, got, err := ws.ReadMessage(); err != nil || string(got) != "through" {
		t.Fatalf("echo: %q, %v", got, err)
	}
	ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
}

// A WebSocket through httputil.ReverseProxy served by waitron (as by
// net/http), to a waitron backend; and through a real nginx in front.
func TestWebSocketThroughProxies(t *testing.T) {
	backend := start(t, http.HandlerFunc(gorillaEcho))
	target, _ := url.Parse("http://" + backend.addr)
	for _, srv := range bothServers(t, httputil.NewSingleHostReverseProxy(target)) {
		t.Run("ReverseProxy on "+srv.name, func(t *testing.T) { echoOnce(t, "ws://"+srv.addr+"/ws") })
	}
	t.Run("nginx", func(t *testing.T) {
		nginx := testutil.RequireTool(t, "nginx")
		echoOnce(t, "ws://"+testutil.StartNginx(t, nginx, backend.addr)+"/ws/echo")
	})
}

// nginx keeps its upstream keep-alive connection across HEAD requests (a
// stray last chunk after a HEAD head made it open a new one each time).
func TestHeadBehindNginxKeepsUpstream(t *testing.T) {
	nginx := testutil.RequireTool(t, "nginx")
	var mu sync.Mutex
	peers := map[string]bool{}
	s := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		peers[r.RemoteAddr] = true
		mu.Unlock()
		w.(http.Flusher).Flush()
	}))
	addr := testutil.StartNginx(t, nginx, s.addr)
	cl := &http.Client{Timeout: ioTimeout}
	for i := 0; i < 50; i++ {
		resp, err := cl.Head("http://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("HEAD %d: %d", i, resp.StatusCode)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(peers) != 1 {
		t.Errorf("nginx used %d upstream connections for 50 HEADs, want 1", len(peers))
	}
}
