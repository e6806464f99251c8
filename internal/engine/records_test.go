package engine_test

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
	"weak"

	"github.com/waitron/waitron/internal/adapter"
)

// bodyProbe is the writer a handler copies its request body into: a
// body held in memory hands it its own buffer (memBody.WriteTo), of which
// it keeps a weak pointer.
type bodyProbe struct {
	buf weak.Pointer[byte]
}

func (p *bodyProbe) Write(b []byte) (int, error) {
	if len(b) > 0 && p.buf.Value() == nil {
		p.buf = weak.Make(&b[0])
	}
	return len(b), nil
}

// TestKeptRequestHoldsLittle: a handler may keep its *http.Request after
// it returns (net/http allows it), and a kept Request must hold no more
// than its own fields: not its body's bytes (up to inbuf_overflow in
// memory; the body is closed), and not, for a pipelined burst's request,
// the burst's other requests. Both were held: the record the Request
// lives in kept its body buffer and, through its Out, the burst's list.
// Weak pointers to them must come back nil after a collection while the
// Requests are still kept.
func TestKeptRequestHoldsLittle(t *testing.T) {
	var mu sync.Mutex
	var kept []*http.Request
	var others []weak.Pointer[http.Request]
	probes := make(chan *bodyProbe, 1)
	s := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/body":
			p := &bodyProbe{}
			io.Copy(p, r.Body)
			probes <- p
			mu.Lock()
			kept = append(kept, r)
			mu.Unlock()
		case "/keep":
			mu.Lock()
			kept = append(kept, r)
			mu.Unlock()
		default:
			mu.Lock()
			others = append(others, weak.Make(r))
			mu.Unlock()
		}
		io.WriteString(w, "ok")
	}))
	c := s.dial(t)
	br := bufio.NewReader(c)
	read := func(n int) {
		t.Helper()
		for range n {
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if b, _ := io.ReadAll(resp.Body); string(b) != "ok" {
				t.Fatalf("response body %q", b)
			}
		}
	}
	body := strings.Repeat("b", 256<<10) // under inbuf_overflow: held in memory
	io.WriteString(c, "POST /body HTTP/1.1\r\nHost: a\r\nContent-Length: 262144\r\n\r\n"+body)
	read(1)
	probe := <-probes
	if probe.buf.Value() == nil {
		t.Fatal("the probe did not see the body's buffer")
	}
	io.WriteString(c, "GET /keep HTTP/1.1\r\nHost: a\r\n\r\n"+strings.Repeat("GET /other HTTP/1.1\r\nHost: a\r\n\r\n", 7))
	read(8)
	io.WriteString(c, "GET /last HTTP/1.1\r\nHost: a\r\n\r\n") // the connection has moved on
	read(1)
	runtime.GC()
	runtime.GC()
	mu.Lock()
	defer mu.Unlock()
	if len(kept) != 2 || len(others) != 8 {
		t.Fatalf("kept %d and saw %d other requests, want 2 and 8", len(kept), len(others))
	}
	if probe.buf.Value() != nil {
		t.Error("a kept Request holds its body's bytes")
	}
	for i, o := range others[:7] {
		if o.Value() != nil {
			t.Errorf("a kept Request holds request %d of its burst", i+2)
		}
	}
	runtime.KeepAlive(kept)
}

// TestKeptRequestOutlivesItsRecord: the engine's record of a request is
// reused once the request is served, for net/http handlers as for
// fasthttp's, so what a handler may keep must not be in it. Every
// request of several connections, single and in pipelined bursts, is
// kept with its ResponseWriter; after later requests have reused the
// records, each kept Request still has its own target, field, remote
// address and context (with its waitron Info), the context has ended,
// and a stray Write on a kept ResponseWriter fails instead of reaching a
// later response. Under -race, a record reused while a kept Request
// still lived in it would also be a reported race.
func TestKeptRequestOutlivesItsRecord(t *testing.T) {
	type keptReq struct {
		r    *http.Request
		w    http.ResponseWriter
		path string
	}
	var mu sync.Mutex
	var kept []keptReq
	s := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		kept = append(kept, keptReq{r, w, r.URL.Path})
		mu.Unlock()
		io.WriteString(w, r.URL.Path)
	}))
	const conns, rounds = 4, 12
	for i := range conns {
		c := s.dial(t)
		br := bufio.NewReader(c)
		for r := range rounds {
			var paths []string
			var req strings.Builder
			for k := range 1 + r%4 { // a single request, or a burst of up to 4
				p := fmt.Sprintf("/c%d/r%d/k%d", i, r, k)
				paths = append(paths, p)
				fmt.Fprintf(&req, "GET %s?q=%d HTTP/1.1\r\nHost: a\r\nX-Path: %s\r\n\r\n", p, k, p)
			}
			io.WriteString(c, req.String())
			for _, p := range paths {
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatal(err)
				}
				if b, _ := io.ReadAll(resp.Body); string(b) != p {
					t.Fatalf("asked %s, got %q", p, b)
				}
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if want := conns * (1 + 2 + 3 + 4) * rounds / 4; len(kept) != want {
		t.Fatalf("kept %d requests, want %d", len(kept), want)
	}
	for _, k := range kept {
		r := k.r
		if r.URL.Path != k.path || r.Header.Get("X-Path") != k.path || r.Method != "GET" || r.Host != "a" ||
			r.RequestURI != k.path+"?q="+r.URL.Query().Get("q") || r.RemoteAddr == "" {
			t.Fatalf("kept request for %s changed: %s %q %q host %q remote %q", k.path, r.Method, r.RequestURI,
				r.Header.Get("X-Path"), r.Host, r.RemoteAddr)
		}
		select { // it ends when the handler has returned, which may be after the client had the response
		case <-r.Context().Done():
		case <-time.After(ioTimeout):
			t.Errorf("%s: the kept request's context has not ended", k.path)
		}
		if _, ok := adapter.RequestInfo(r); !ok {
			t.Errorf("%s: the kept request's context lost its Info", k.path)
		}
		if _, err := io.WriteString(k.w, "stray"); err == nil {
			t.Errorf("%s: a Write after the handler returned succeeded", k.path)
		}
	}
}
