package main

import (
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestGracefulShutdownUnderLoad: SIGTERM with 100 requests in flight lets
// all of them complete, refuses new connections, and exits 0.
func TestGracefulShutdownUnderLoad(t *testing.T) {
	ch := startChildSpec(t, childSpec{withMetrics: true}, "--threads", "100", "--connection-limit", "200")
	const n = 100
	var wg sync.WaitGroup
	results := make(chan string, n)
	conns := make(chan struct{}, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", ch.addr, 5*time.Second)
			if err != nil {
				results <- "dial: " + err.Error()
				conns <- struct{}{}
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(15 * time.Second))
			io.WriteString(c, "GET /delay/1000 HTTP/1.1\r\nHost: a\r\n\r\n")
			conns <- struct{}{}
			b, _ := io.ReadAll(c)
			results <- string(b)
		}()
	}
	for i := 0; i < n; i++ {
		<-conns
	}
	ch.waitGauge(t, "waitron_handlers_running", n) // every request is with its handler
	ch.cmd.Process.Signal(syscall.SIGTERM)
	ch.waitDraining(t)
	// A new connection is not served once draining has begun.
	if c, err := net.DialTimeout("tcp", ch.addr, 2*time.Second); err == nil {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n")
		if b, _ := io.ReadAll(c); len(b) != 0 {
			t.Errorf("a connection made after SIGTERM was served: %q", b)
		}
		c.Close()
	}
	wg.Wait()
	close(results)
	ok := 0
	for r := range results {
		if strings.HasPrefix(r, "HTTP/1.1 200 OK") && strings.HasSuffix(r, "delayed 1000 ms\n") && strings.Contains(r, "Connection: close") {
			ok++
		} else {
			t.Errorf("request in flight at SIGTERM got %q", r)
		}
	}
	if code, _ := ch.waitExit(t); code != 0 || ok != n {
		t.Fatalf("exit code %d, %d of %d requests completed", code, ok, n)
	}
}

// TestSecondSignalForcesExit: a request that would take a minute does not
// hold the process once a second signal comes.
func TestSecondSignalForcesExit(t *testing.T) {
	ch := startChildSpec(t, childSpec{withMetrics: true})
	c, err := net.Dial("tcp", ch.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /delay/10000 HTTP/1.1\r\nHost: a\r\n\r\n")
	ch.waitGauge(t, "waitron_handlers_running", 1)
	ch.cmd.Process.Signal(syscall.SIGTERM)
	ch.waitDraining(t) // the first signal has been taken
	ch.cmd.Process.Signal(syscall.SIGTERM)
	if code, _ := ch.waitExit(t); code == 0 {
		t.Fatal("forced exit reported success")
	}
}
