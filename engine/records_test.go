package engine_test

import (
	"bufio"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"weak"
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
