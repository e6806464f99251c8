package engine_test

import (
	"bufio"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/waitron/waitron/engine"
)

// TestWorkerPanicContained: a panic in waitron's worker-side code (not
// the handler's) is logged, closes its connection, and gives the worker's
// place back: with threads 1 the next client is still served, and
// Shutdown (at cleanup, with a deadline) does not wait for the lost
// request. Both adapters.
func TestWorkerPanicContained(t *testing.T) {
	for _, fast := range []bool{false, true} {
		name := "net/http"
		if fast {
			name = "fasthttp"
		}
		t.Run(name, func(t *testing.T) {
			var srv *testServer
			if fast {
				srv = startFastWith(t, nil, engine.PanicAfterDirectWrite, "threads", "1")
			} else {
				srv = startWith(t, nil, engine.PanicAfterDirectWrite, "threads", "1")
			}
			req := "GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n"
			c := srv.dial(t)
			if _, err := io.WriteString(c, req); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || string(b) != "Hello, World!" {
				t.Fatalf("first response: %d %q", resp.StatusCode, b)
			}
			expectClosed(t, br) // the response was written whole before the panic; then the connection goes
			for range 3 {
				got := srv.roundTrip(t, "GET /plaintext HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
				if !strings.HasPrefix(got, "HTTP/1.1 200 OK\r\n") || !strings.HasSuffix(got, "Hello, World!") {
					t.Fatalf("after the panic: %q", got)
				}
			}
			if logs := srv.logs.String(); !strings.Contains(logs, "internal error on a worker") ||
				!strings.Contains(logs, "a test's panic in worker-side engine code") {
				t.Fatalf("the panic was not logged:\n%s", logs)
			}
		})
	}
}

// TestLoopPanicAnswered: a panic in waitron's loop-side code while a
// request is read (before any of its response) is logged with its stack
// and answered with a 500 and a close, not a bare close; the loop serves
// the next clients. Both adapters.
func TestLoopPanicAnswered(t *testing.T) {
	for _, fast := range []bool{false, true} {
		name := "net/http"
		if fast {
			name = "fasthttp"
		}
		t.Run(name, func(t *testing.T) {
			var srv *testServer
			if fast {
				srv = startFastWith(t, nil, engine.PanicOnDispatch, "threads", "1")
			} else {
				srv = startWith(t, nil, engine.PanicOnDispatch, "threads", "1")
			}
			c := srv.dial(t)
			if _, err := io.WriteString(c, "GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 500 || !resp.Close || !strings.Contains(string(b), "Internal Server Error") {
				t.Fatalf("answer: %d close=%v %q", resp.StatusCode, resp.Close, b)
			}
			expectClosed(t, br)
			for range 3 {
				got := srv.roundTrip(t, "GET /plaintext HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
				if !strings.HasPrefix(got, "HTTP/1.1 200 OK\r\n") || !strings.HasSuffix(got, "Hello, World!") {
					t.Fatalf("after the panic: %q", got)
				}
			}
			if logs := srv.logs.String(); !strings.Contains(logs, "internal error on the event loop") ||
				!strings.Contains(logs, "a test's panic in loop-side engine code") || !strings.Contains(logs, "engine.(*conn).dispatch") {
				t.Fatalf("the panic and its stack were not logged:\n%s", logs)
			}
		})
	}
}
