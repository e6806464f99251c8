package engine_test

import (
	"bufio"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/waitron/waitron/internal/engine"
	"github.com/waitron/waitron/internal/testutil"
)

// holdMux answers /hold once release is closed (saying entered as it
// starts), and anything else at once.
func holdMux(entered chan<- struct{}, release <-chan struct{}) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			entered <- struct{}{}
			<-release
		}
		io.WriteString(w, "ok")
	})
}

// expectShed reads the 503 of a shed request from br: Retry-After and
// Connection: close, the reason in the body, and the close after it.
func expectShed(t *testing.T, br *bufio.Reader, why string) {
	t.Helper()
	resp, body := testutil.ReadResponse(t, br, http.MethodGet)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "1" || !resp.Close || !strings.Contains(body, why) {
		t.Fatalf("shed: %d Retry-After=%q close=%v %q", resp.StatusCode, resp.Header.Get("Retry-After"), resp.Close, body)
	}
	expectClosed(t, br)
}

// TestQueueLimitSheds: with queue_limit 1 and one worker, a request that
// finds one already waiting is answered 503 at once without running its
// handler, and counted; those admitted are served.
func TestQueueLimitSheds(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	s := start(t, holdMux(entered, release), "threads", "1", "queue_limit", "1")
	first := s.dial(t)
	io.WriteString(first, "GET /hold HTTP/1.1\r\nHost: a\r\n\r\n")
	recv(t, entered)
	second := s.dial(t)
	io.WriteString(second, "GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n")
	testutil.WaitFor(t, "the second request to wait for the worker", func() bool { return s.Stats().Queued == 1 })
	third := s.dial(t)
	io.WriteString(third, "GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n")
	expectShed(t, bufio.NewReader(third), "queue_limit")
	if got := s.Stats().Shed; got != 1 {
		t.Errorf("Stats().Shed = %d, want 1", got)
	}
	close(release)
	for _, c := range []io.Reader{first, second} {
		if _, body := testutil.ReadResponse(t, bufio.NewReader(c), http.MethodGet); body != "ok" {
			t.Errorf("an admitted request: %q", body)
		}
	}
}

// TestQueueTimeoutSheds: with queue_timeout 1 s and one worker, a request
// a worker takes after waiting longer (the server's clock moved on by 2 s)
// is answered 503 without running its handler; the one served before it
// is answered in full. Both adapters.
func TestQueueTimeoutSheds(t *testing.T) {
	for _, fast := range []bool{false, true} {
		t.Run(map[bool]string{false: "net/http", true: "fasthttp"}[fast], func(t *testing.T) {
			entered, release := make(chan struct{}), make(chan struct{})
			var s *testServer
			if fast {
				s = startFast(t, func(ctx *fasthttp.RequestCtx) {
					if string(ctx.Path()) == "/hold" {
						entered <- struct{}{}
						<-release
					}
					ctx.SetBodyString("ok")
				}, "threads", "1", "queue_timeout", "1")
			} else {
				s = start(t, holdMux(entered, release), "threads", "1", "queue_timeout", "1")
			}
			first := s.dial(t)
			io.WriteString(first, "GET /hold HTTP/1.1\r\nHost: a\r\n\r\n")
			recv(t, entered)
			second := s.dial(t)
			io.WriteString(second, "GET /hold HTTP/1.1\r\nHost: a\r\n\r\n") // its handler would block: it must not run
			testutil.WaitFor(t, "the second request to wait for the worker", func() bool { return s.Stats().Queued == 1 })
			engine.Advance(s.Server, 2*time.Second)
			close(release)
			if _, body := testutil.ReadResponse(t, bufio.NewReader(first), http.MethodGet); body != "ok" {
				t.Errorf("the request served: %q", body)
			}
			expectShed(t, bufio.NewReader(second), "queue_timeout")
			if got := s.Stats().Shed; got != 1 {
				t.Errorf("Stats().Shed = %d, want 1", got)
			}
			if !strings.Contains(s.logs.String(), "shedding load") {
				t.Errorf("no shedding line in the log:\n%s", s.logs)
			}
		})
	}
}
