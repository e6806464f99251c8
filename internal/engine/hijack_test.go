package engine_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

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
