package tests

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	cws "github.com/coder/websocket"
	"github.com/gorilla/websocket"

	"github.com/waitron/waitron/internal/targetapp"
	"github.com/waitron/waitron/internal/testutil"
)

// gorilla/websocket and coder/websocket echo small and 1 MiB messages both
// ways and close cleanly, on waitron as on net/http.
func TestWebSocketLibraries(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	mux := http.NewServeMux()
	mux.HandleFunc("/gorilla", gorillaEcho)
	mux.HandleFunc("/coder", coderEchoHandler)
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
			if _, body := testutil.ReadResponse(t, bufio.NewReader(c), http.MethodGet); body != "Hello, World!" {
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
// net/http), to a waitron backend; and through a real nginx (the
// deployment docs' site file) in front of a waitron backend and of a
// net/http one alike: a browser's page on the site's own origin gets its
// echo, another site's page is refused by the upgrader's Origin check.
func TestWebSocketThroughProxies(t *testing.T) {
	backend := start(t, http.HandlerFunc(gorillaEcho))
	target, _ := url.Parse("http://" + backend.addr)
	for _, srv := range bothServers(t, httputil.NewSingleHostReverseProxy(target)) {
		t.Run("ReverseProxy on "+srv.name, func(t *testing.T) { echoOnce(t, "ws://"+srv.addr+"/ws") })
	}
	for _, be := range bothServers(t, http.HandlerFunc(gorillaEcho)) {
		t.Run("nginx in front of "+be.name, func(t *testing.T) {
			front := testutil.StartNginx(t, testutil.RequireTool(t, "nginx"), be.addr)
			echoOnce(t, "ws://"+front+"/ws/echo")
			_, resp, err := websocket.DefaultDialer.Dial("ws://"+front+"/ws/echo",
				http.Header{"Origin": {"https://elsewhere.example"}})
			if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
				t.Fatalf("cross-origin page: %v, %v", resp, err)
			}
		})
	}
}

// The target apps' /ws echoes WebSocket messages (coder/websocket), so
// k6 or websocat can drive it: the net/http app on waitron, the fasthttp
// app on waitron's fasthttp adapter and on fasthttp's own server.
func TestTargetAppWebSocket(t *testing.T) {
	for name, s := range map[string]*server{
		"net/http":         start(t, targetapp.New()),
		"fasthttp adapter": startFast(t, targetapp.NewFast()),
		"fasthttp":         {addr: testutil.FastPeer(t, targetapp.NewFast())},
	} {
		t.Run(name, func(t *testing.T) { coderEcho(t, "ws://"+s.addr+"/ws", nil) })
	}
}

// coderEchoHandler echoes every coder/websocket message, up to 4 MiB.
func coderEchoHandler(w http.ResponseWriter, r *http.Request) {
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
}
