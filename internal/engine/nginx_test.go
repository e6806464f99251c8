package engine_test

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/waitron/waitron/internal/testutil"
)

// smuggling payloads: each hides a request to /smuggled where a server
// disagreeing with nginx about framing would see one request more than
// nginx forwarded.
var smuggling = map[string]string{
	"CL.TE":          "POST /cl-te HTTP/1.1\r\nHost: a\r\nContent-Length: 52\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\nX: y\r\n\r\n",
	"TE.CL":          "POST /te-cl HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n2e\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\nX: yyyyyyy\r\n\r\n0\r\n\r\n",
	"TE.TE":          "POST /te-te HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: cow\r\nContent-Length: 4\r\n\r\n5c\r\nGET /smuggled HTTP/1.1\r\n\r\n0\r\n\r\n",
	"TE space colon": "POST /te-space HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
	"double CL":      "POST /double-cl HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 41\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
	"chunk ext":      "POST /chunk-ext HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2;\"\r\nxx\r\n0\r\n\r\nGET /pipelined HTTP/1.1\r\nHost: a\r\n\r\n",
}

// TestBehindNginx puts a real nginx (Debian package nginx-light) in front
// of waitron and sends it the codec's whole corpus plus the smuggling
// payloads, each followed by one more request. nginx re-frames what it
// forwards; the two agree on framing when waitron runs exactly as many
// requests as nginx accepted (a smuggled one would be one more) and never
// answers nginx with an error (nginx would send 502).
func TestBehindNginx(t *testing.T) {
	nginx := testutil.RequireTool(t, "nginx")
	var mu sync.Mutex
	var seen []string
	s := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.Path)
		mu.Unlock()
		io.WriteString(w, "ok")
	}), "max_request_header_size", "8192", "max_request_body_size", "1048576")
	addr := testutil.StartNginx(t, nginx, s.addr)

	cases := map[string]string{}
	for name, raw := range smuggling {
		cases["smuggling/"+name] = raw
	}
	files, _ := filepath.Glob("../../codec/testdata/*.http")
	for _, f := range files {
		b, _ := os.ReadFile(f)
		raw, _, _ := bytes.Cut(b, []byte("\n----------\n"))
		cases["corpus/"+strings.TrimSuffix(filepath.Base(f), ".http")] = string(raw)
	}
	for name, raw := range cases {
		t.Run(name, func(t *testing.T) {
			mu.Lock()
			seen = seen[:0]
			mu.Unlock()
			statuses := exchange(t, addr, raw+"GET /follow-up HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
			mu.Lock()
			got := strings.Join(seen, ", ")
			mu.Unlock()
			for _, st := range statuses {
				if st == http.StatusBadGateway {
					t.Fatalf("nginx got an error from waitron (they disagree): statuses %v, waitron ran [%s]", statuses, got)
				}
			}
			ran200 := 0
			for _, st := range statuses {
				if st == 200 {
					ran200++
				}
			}
			if n := len(strings.Split(got, ", ")); got != "" && n != ran200 || got == "" && ran200 != 0 {
				t.Fatalf("nginx answered %v but waitron ran [%s]", statuses, got)
			}
		})
	}
}

// exchange sends raw to addr and returns the statuses of the responses,
// read until nginx closes. nginx answers an HTTP/0.9 request with a bare
// body; that counts as a 200, or a 400 when it is waitron's.
func exchange(t *testing.T, addr, raw string) []int {
	c, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(ioTimeout))
	go io.WriteString(c, raw)
	br := bufio.NewReader(c)
	var statuses []int
	for {
		if b, _ := br.Peek(5); len(b) > 0 && !bytes.HasPrefix([]byte("HTTP/"), b) {
			body, _ := io.ReadAll(br)
			if bytes.HasPrefix(body, []byte("Bad Request")) {
				// waitron's 400 passed on as a bare body: the documented
				// site sets Host from the request, which HTTP/0.9 has not.
				return append(statuses, 400)
			}
			return append(statuses, 200)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return statuses
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		statuses = append(statuses, resp.StatusCode)
	}
}

// Through the documented site's /events/ location (proxy_buffering off), a
// streamed response's first event reaches the client while the handler
// still runs.
func TestStreamingBehindNginx(t *testing.T) {
	nginx := testutil.RequireTool(t, "nginx")
	more := make(chan struct{})
	released := make(chan bool, 1)
	s := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: 1\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-more:
			released <- true
		case <-time.After(ioTimeout): // only if the event never got through
			released <- false
		}
		io.WriteString(w, "data: 2\n\n")
	}))
	addr := testutil.StartNginx(t, nginx, s.addr)
	resp, err := (&http.Client{Timeout: 2 * ioTimeout}).Get("http://" + addr + "/events/feed")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); err != nil || line != "data: 1\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	close(more)
	if !<-released {
		t.Fatal("the first event reached the client only after the handler had finished: nginx buffered it")
	}
	rest, _ := io.ReadAll(br)
	if string(rest) != "\ndata: 2\n\n" {
		t.Fatalf("rest %q", rest)
	}
}
