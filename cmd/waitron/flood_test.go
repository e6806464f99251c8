package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDescriptorFlood runs the command with RLIMIT_NOFILE=64, starts three
// slow requests and a large download, then opens 150 idle connections at
// once, so accept fails with EMFILE. Nothing in flight may be lost: the
// slow requests are answered, the download completes, the open
// connections keep being served, and once the flood is gone a new client
// is served; the log says accept failed, and nothing was restarted. Both
// apps (the net/http and the fasthttp adapter).
func TestDescriptorFlood(t *testing.T) {
	for _, app := range []string{"target", "target-fasthttp"} {
		t.Run(app, func(t *testing.T) { descriptorFlood(t, app) })
	}
}

func descriptorFlood(t *testing.T, app string) {
	ch := startChildSpec(t, childSpec{env: []string{"WAITRON_TEST_NOFILE=64"}, withMetrics: true},
		"--app", app, "--connection-limit", "1000")
	defer func() {
		ch.cmd.Process.Signal(syscall.SIGTERM)
		if code, _ := ch.waitExit(t); code != 0 {
			t.Errorf("exit code %d after SIGTERM", code)
		}
		if t.Failed() {
			t.Logf("child log:\n%s", ch.log())
		}
	}()
	dial := func() net.Conn {
		c, err := net.DialTimeout("tcp", ch.addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(30 * time.Second))
		t.Cleanup(func() { c.Close() })
		return c
	}
	// Three slow requests in flight, a 32 MiB download read in part, and a
	// keep-alive client that already has its connection.
	var slow []net.Conn
	for range 3 {
		c := dial()
		io.WriteString(c, "GET /delay/1500 HTTP/1.1\r\nHost: a\r\n\r\n")
		slow = append(slow, c)
	}
	const size = 32 << 20
	dl := dial()
	fmt.Fprintf(dl, "GET /bytes/%d HTTP/1.1\r\nHost: a\r\n\r\n", size)
	dlr := bufio.NewReader(dl)
	resp, err := http.ReadResponse(dlr, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.CopyN(io.Discard, resp.Body, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	kept := dial()
	keptr := bufio.NewReader(kept)
	plaintext := func(c net.Conn, r *bufio.Reader, what string) {
		t.Helper()
		io.WriteString(c, "GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n")
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		b, _ := io.ReadAll(resp.Body)
		if string(b) != "Hello, World!" {
			t.Fatalf("%s: %q", what, b)
		}
	}
	plaintext(kept, keptr, "before the flood")

	// The flood: more connections than descriptors. The kernel completes
	// them all (they wait in the listen queue); the server cannot accept
	// them all.
	var flood []net.Conn
	for range 150 {
		if c, err := net.DialTimeout("tcp", ch.addr, time.Second); err == nil {
			flood = append(flood, c)
		}
	}
	ch.waitLog(t, "accept failed; pausing this listener")

	// Everything in flight goes on.
	plaintext(kept, keptr, "an open connection during the flood")
	for i, c := range slow {
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("slow request %d: %v %v", i, resp, err)
		}
	}
	n, err := io.Copy(io.Discard, resp.Body)
	if got += n; err != nil || got != size {
		t.Fatalf("download: %d of %d bytes, %v", got, size, err)
	}

	// Descriptors free again: the queued connections and a new one are
	// served.
	for _, c := range flood {
		c.Close()
	}
	fresh := dial()
	plaintext(fresh, bufio.NewReader(fresh), "a new connection after the flood")
	if strings.Contains(ch.log(), "restarting them") {
		t.Errorf("the event loops were restarted")
	}
	if v, ok := ch.gauge("waitron_accept_errors_total"); !ok || v < 1 {
		t.Errorf("waitron_accept_errors_total = %v (%v)", v, ok)
	}
}
