package engine_test

import (
	"bufio"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/waitron/waitron/internal/engine"
)

// afterInjectedPanic runs, on each adapter with threads 1, the options
// set and before (which makes waitron's own code panic once), request,
// whose response check is first, expects the connection closed after
// it, three more clients served, and the log to hold every one of logged.
func afterInjectedPanic(t *testing.T, set []string, before func(*engine.Server), request string, first func(*http.Response, []byte) bool, logged ...string) {
	for _, fast := range []bool{false, true} {
		name := "net/http"
		if fast {
			name = "fasthttp"
		}
		t.Run(name, func(t *testing.T) {
			var srv *testServer
			set := append([]string{"threads", "1"}, set...)
			if fast {
				srv = startFastWith(t, nil, before, set...)
			} else {
				srv = startWith(t, nil, before, set...)
			}
			c := srv.dial(t)
			if _, err := io.WriteString(c, request); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if b, _ := io.ReadAll(resp.Body); !first(resp, b) {
				t.Fatalf("first response: %d close=%v %q", resp.StatusCode, resp.Close, b)
			}
			expectClosed(t, br)
			for range 3 {
				got := srv.roundTrip(t, "GET /plaintext HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
				if !strings.HasPrefix(got, "HTTP/1.1 200 OK\r\n") || !strings.HasSuffix(got, "Hello, World!") {
					t.Fatalf("after the panic: %q", got)
				}
			}
			logs := srv.logs.String()
			for _, want := range logged {
				if !strings.Contains(logs, want) {
					t.Fatalf("the log lacks %q:\n%s", want, logs)
				}
			}
		})
	}
}

// TestWorkerPanicContained: a panic in waitron's worker-side code (not
// the handler's) is logged, closes its connection, and gives the worker's
// place back: with threads 1 the next client is still served, and
// Shutdown (at cleanup, with a deadline) does not wait for the lost
// request. Both adapters. The response was written whole before the
// panic (in the access log's line for it); then the connection goes.
func TestWorkerPanicContained(t *testing.T) {
	set := []string{"access_log", filepath.Join(t.TempDir(), "access.log"), "access_log_format", "json"}
	afterInjectedPanic(t, set, engine.PanicInAccessLog, "GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n",
		func(resp *http.Response, b []byte) bool {
			return resp.StatusCode == 200 && string(b) == "Hello, World!"
		},
		"internal error on a worker", "a test's panic in waitron's own code", "engine.(*env).logServed")
}

// TestLoopPanicAnswered: a panic in waitron's loop-side code while a
// request is read (before any of its response: here the logger, as the
// loop logs why it rejects the request) is logged with its stack and
// answered with a 500 and a close, not a bare close; the loop serves the
// next clients. Both adapters.
func TestLoopPanicAnswered(t *testing.T) {
	afterInjectedPanic(t, nil, func(s *engine.Server) { engine.PanicInLog(s, "rejected request") },
		badRequest, func(resp *http.Response, b []byte) bool {
			return resp.StatusCode == 500 && resp.Close && strings.Contains(string(b), "Internal Server Error")
		}, "internal error on the event loop", "a test's panic in waitron's own code", "engine.(*conn).failWith")
}

// badRequest is a request the parser refuses (400) after its request line.
const badRequest = "GET /plaintext HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"
