package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/waitron/waitron/internal/engine"
	"github.com/waitron/waitron/internal/fastadapter"
	"github.com/waitron/waitron/internal/targetapp"
	"github.com/waitron/waitron/internal/testutil"
	"github.com/waitron/waitron/limits"
)

// accessLines serves the target app with an access log in format, sends
// its requests, shuts down (which writes the log out) and returns the lines.
func accessLines(t *testing.T, format string, requests ...string) []string {
	t.Helper()
	return accessLinesOf(t, func(o limits.Options) (*engine.Server, error) { return engine.New(targetapp.NewWith(testCaps), o, nil) }, format, requests...)
}

// accessLinesOf is accessLines for the server mk makes.
func accessLinesOf(t *testing.T, mk func(limits.Options) (*engine.Server, error), format string, requests ...string) []string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "access.log")
	o := limits.Default()
	for k, v := range map[string]string{"listen": "127.0.0.1:0", "access_log": path, "access_log_format": format,
		"trusted_proxy": "127.0.0.1", "trusted_proxy_headers": "x-forwarded-for"} {
		if err := o.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	srv, err := mk(o)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.ListenAndServe() }()
	<-srv.Ready()
	if err := srv.ReadyErr(); err != nil {
		t.Fatal(err)
	}
	ts := &testServer{Server: srv, addr: srv.Addrs()[0].String()}
	for _, raw := range requests {
		c := ts.dial(t)
		io.WriteString(c, raw)
		io.ReadAll(c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := recv(t, served); !errors.Is(err, http.ErrServerClosed) {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

var accessRequests = []string{
	"GET /plaintext?a=1 HTTP/1.1\r\nHost: a\r\nReferer: http://r.example/\r\nUser-Agent: test \"agent\"\r\nX-Forwarded-For: 203.0.113.7\r\nConnection: close\r\n\r\n",
	"GET /status/404 HTTP/1.0\r\n\r\n",
	"GARBAGE\r\n\r\n",
	"POST /refused HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
}

// combined: Apache's and nginx's combined format, the client as the
// trusted-proxy rules resolved it, then the duration and the close reason.
func TestAccessLogCombined(t *testing.T) {
	lines := accessLines(t, "combined", accessRequests...)
	if len(lines) != 4 {
		t.Fatalf("want 4 lines, got %d:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	want := []*regexp.Regexp{
		regexp.MustCompile(`^203\.0\.113\.7 - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] "GET /plaintext\?a=1 HTTP/1\.1" 200 13 "http://r\.example/" "test \\"agent\\"" \d+\.\d{6} close=requested$`),
		regexp.MustCompile(`^127\.0\.0\.1 - - \[[^]]+\] "GET /status/404 HTTP/1\.0" 404 \d+ "-" "-" \d+\.\d{6} close=requested$`),
		regexp.MustCompile(`^127\.0\.0\.1 - - \[[^]]+\] "- - -" 400 \d+ "-" "-" \d+\.\d{6} close=bad_request$`),
		// Refused after its request line parsed: the line names it.
		regexp.MustCompile(`^127\.0\.0\.1 - - \[[^]]+\] "POST /refused HTTP/1\.1" 501 \d+ "-" "-" \d+\.\d{6} close=bad_request$`),
	}
	// A line is written after its response left, so a client that has read
	// one response may see the next one logged first: any order.
	for _, re := range want {
		found := false
		for _, l := range lines {
			found = found || re.MatchString(l)
		}
		if !found {
			t.Errorf("no line matches %s in\n%s", re, strings.Join(lines, "\n"))
		}
	}
}

// json: one log/slog JSON record per response.
func TestAccessLogJSON(t *testing.T) {
	lines := accessLines(t, "json", accessRequests[0])
	if len(lines) != 1 {
		t.Fatalf("want 1 line, got %q", lines)
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatalf("%v: %s", err, lines[0])
	}
	for k, v := range map[string]any{"msg": "request", "remote": "203.0.113.7", "method": "GET", "uri": "/plaintext?a=1",
		"proto": "HTTP/1.1", "status": 200.0, "bytes": 13.0, "referer": "http://r.example/", "user_agent": "test \"agent\"",
		"close": "requested"} {
		if rec[k] != v {
			t.Errorf("%s = %v, want %v", k, rec[k], v)
		}
	}
	if _, ok := rec["duration_s"].(float64); !ok {
		t.Errorf("no duration_s in %s", lines[0])
	}
}

// The fasthttp adapter's responses are logged alike: the client as the
// trusted-proxy rules resolved it, Referer and User-Agent, and the body
// bytes of a response in memory, of a stream of known length and of a
// chunked stream (its payload, not its framing).
func TestAccessLogFastHTTP(t *testing.T) {
	lines := accessLinesOf(t, func(o limits.Options) (*engine.Server, error) {
		return engine.NewFor(fastadapter.Adapter(targetapp.NewFastWith(testCaps)), o, nil)
	},
		"combined", accessRequests[0],
		"GET /bytes/100 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
		"GET /stream/3?size=4 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
		"HEAD /plaintext HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	for _, re := range []*regexp.Regexp{
		regexp.MustCompile(`^203\.0\.113\.7 - - \[[^]]+\] "GET /plaintext\?a=1 HTTP/1\.1" 200 13 "http://r\.example/" "test \\"agent\\"" \d+\.\d{6} close=requested$`),
		regexp.MustCompile(`^127\.0\.0\.1 - - \[[^]]+\] "GET /bytes/100 HTTP/1\.1" 200 100 "-" "-" `),
		regexp.MustCompile(`^127\.0\.0\.1 - - \[[^]]+\] "GET /stream/3\?size=4 HTTP/1\.1" 200 12 "-" "-" `),
		regexp.MustCompile(`^127\.0\.0\.1 - - \[[^]]+\] "HEAD /plaintext HTTP/1\.1" 200 - "-" "-" `),
	} {
		found := false
		for _, l := range lines {
			found = found || re.MatchString(l)
		}
		if !found {
			t.Errorf("no line matches %s in\n%s", re, strings.Join(lines, "\n"))
		}
	}
}

// TestAccessLogLoopPanic: the 500 answering a request the event loop
// failed on (a panic in waitron's code) has its line, with the request
// line and the close reason.
func TestAccessLogLoopPanic(t *testing.T) {
	lines := accessLinesOf(t, func(o limits.Options) (*engine.Server, error) {
		s, err := engine.New(targetapp.NewWith(testCaps), o, slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelDebug})))
		if err == nil {
			engine.PanicInLog(s, "rejected request")
		}
		return s, err
	}, "combined", badRequest)
	if len(lines) != 1 || !strings.Contains(lines[0], `"GET /plaintext HTTP/1.1" 500 `) || !strings.Contains(lines[0], "close=internal_error") {
		t.Fatalf("access log: %q", lines)
	}
}

// TestAccessLogPipelinedBurst: a pipelined burst is served by one worker
// whose complete responses but the last are held back and leave with the
// next write; each is logged once, in the order of the requests, when it
// leaves, so its duration ends at that write: the held responses of a
// burst read at once (one start time) have one duration, the time the
// burst's write left. Both adapters.
func TestAccessLogPipelinedBurst(t *testing.T) {
	burst := "GET /status/201 HTTP/1.1\r\nHost: a\r\n\r\n" +
		"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n" +
		"GET /status/404 HTTP/1.1\r\nHost: a\r\n\r\n" +
		"GET /json HTTP/1.1\r\nHost: a\r\n\r\n" +
		"GET /plaintext?last HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
	for _, c := range []struct {
		name string
		mk   func(limits.Options) (*engine.Server, error)
	}{
		{"net/http", func(o limits.Options) (*engine.Server, error) { return engine.New(targetapp.NewWith(testCaps), o, nil) }},
		{"fasthttp", func(o limits.Options) (*engine.Server, error) {
			return engine.NewFor(fastadapter.Adapter(targetapp.NewFastWith(testCaps)), o, nil)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			lines := accessLinesOf(t, c.mk, "combined", burst)
			want := []string{`"GET /status/201 HTTP/1.1" 201 `, `"GET /plaintext HTTP/1.1" 200 13 `, `"GET /status/404 HTTP/1.1" 404 `,
				`"GET /json HTTP/1.1" 200 27 `, `"GET /plaintext?last HTTP/1.1" 200 13 `}
			if len(lines) != len(want) {
				t.Fatalf("want %d lines, got %d:\n%s", len(want), len(lines), strings.Join(lines, "\n"))
			}
			dur := regexp.MustCompile(` (\d+\.\d{6})( close=\w+)?$`)
			var held []string
			for i, l := range lines {
				if !strings.Contains(l, want[i]) {
					t.Errorf("line %d: want %s in %s", i+1, want[i], l)
				}
				if m := dur.FindStringSubmatch(l); m == nil {
					t.Errorf("line %d has no duration: %s", i+1, l)
				} else if i < len(lines)-1 {
					held = append(held, m[1])
				}
			}
			for i, d := range held {
				if d != held[0] {
					t.Errorf("held response %d took %s s, the first %s: the burst's held responses leave in one write", i+1, d, held[0])
				}
			}
		})
	}
}

// Responses the server makes without a handler are logged like any: a
// 408 for a body that stalled (with its request line), and the 503 of a
// client refused over connection_limit and backlog.
func TestAccessLogServerAnswers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	s := start(t, nil, "access_log", path, "connection_limit", "1", "backlog", "1", "request_body_timeout", "10")
	held := s.dial(t) // holds the one slot
	io.WriteString(held, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
	s.waitRead(t, uint64(len("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")))
	parked := s.dial(t) // waits for it
	testutil.WaitFor(t, "a parked client", func() bool { return s.Stats().Parked == 1 })
	refused := s.dial(t) // beyond backlog: 503
	b, _ := io.ReadAll(refused)
	if !strings.HasPrefix(string(b), "HTTP/1.1 503 ") {
		t.Fatalf("over connection_limit and backlog: %q", b)
	}
	engine.Advance(s.Server, 11*time.Second) // request_body_timeout: the held body stalled
	b, _ = io.ReadAll(held)
	if !strings.HasPrefix(string(b), "HTTP/1.1 408 ") {
		t.Fatalf("stalled body: %q", b)
	}
	parked.Close()
	for _, re := range []*regexp.Regexp{
		regexp.MustCompile(`^127\.0\.0\.1 - - \[[^]]+\] "- - -" 503 \d+ "-" "-" \d+\.\d{6} close=overload$`),
		regexp.MustCompile(`^127\.0\.0\.1 - - \[[^]]+\] "POST /echo HTTP/1\.1" 408 \d+ "-" "-" \d+\.\d{6} close=body_timeout$`),
	} {
		testutil.WaitFor(t, "the line "+re.String(), func() bool {
			b, _ := os.ReadFile(path)
			for _, l := range strings.Split(string(b), "\n") {
				if re.MatchString(l) {
					return true
				}
			}
			return false
		})
	}
}
