//go:build linux

package main

import (
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestOpenLoop runs the fixed-rate generator against a plain net/http
// server on loopback: every request due after the warm-up is answered and
// counted once, pipelined responses in one read are each counted, and its
// from-write figure never exceeds its from-due one.
func TestOpenLoop(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("Hello, World!"))
	})}
	go srv.Serve(ln)
	defer srv.Close()
	const (
		rate  = 2000
		conns = 4
		warm  = 20 * time.Millisecond
		d     = 100 * time.Millisecond
	)
	res := make(chan latencyResult, 1)
	go func() { runtime.LockOSThread(); res <- openLoop(ln.Addr().String(), rate, conns, warm, d) }()
	r := <-res
	if r.err != nil {
		t.Fatal(r.err)
	}
	// Each connection's requests are due every conns/rate s from a start
	// staggered within one interval: d holds rate*d/conns of each, give or
	// take the one that straddles an edge.
	per := int(rate * d.Seconds() / conns)
	if n := len(r.due); n < conns*(per-1) || n > conns*(per+1) || n != len(r.sent) {
		t.Fatalf("%d responses counted (%d from the write), want %d±%d", n, len(r.sent), conns*per, conns)
	}
	for i := range r.due {
		if r.sent[i] > r.due[i] || r.sent[i] <= 0 {
			t.Fatalf("response %d: %v from the write, %v from due", i, r.sent[i], r.due[i])
		}
	}
}

// TestResponseLen reads responses as they arrive, whole or in part.
func TestResponseLen(t *testing.T) {
	ok := "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\ncontent-length: 13\r\n\r\nHello, World!"
	for i := 0; i < len(ok); i++ {
		if n, err := responseLen([]byte(ok[:i])); n != 0 || err != nil {
			t.Fatalf("%d bytes of %d: %d, %v", i, len(ok), n, err)
		}
	}
	if n, err := responseLen([]byte(ok + ok)); n != len(ok) || err != nil {
		t.Fatalf("two responses: %d, %v", n, err)
	}
	for _, bad := range []string{
		"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
	} {
		if _, err := responseLen([]byte(bad)); err == nil {
			t.Errorf("%q: no error", strings.SplitN(bad, "\r\n", 2)[0])
		}
	}
}
