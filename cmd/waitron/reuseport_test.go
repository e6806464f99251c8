package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"
)

// pidOf asks a new connection to addr which process answered.
func pidOf(t *testing.T, addr string) uint64 {
	t.Helper()
	cl := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := cl.Get("http://" + addr + "/runtime")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v map[string]uint64
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	return v["pid"]
}

// Two processes with --reuse-port serve one port, and share one
// --metrics-listen port too (a successor must start beside the process it
// replaces); one stopped gracefully, the other goes on serving every new
// connection (the zero-downtime restart pattern).
func TestReusePortTwoProcesses(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	m, _ := net.Listen("tcp", "127.0.0.1:0")
	metrics := m.Addr().String()
	m.Close()
	a := startChildAt(t, addr, "--reuse-port", "--metrics-listen", metrics)
	b := startChildAt(t, addr, "--reuse-port", "--metrics-listen", metrics)
	seen := map[uint64]bool{}
	for i := 0; i < 64 && len(seen) < 2; i++ {
		seen[pidOf(t, addr)] = true
	}
	if !seen[uint64(a.cmd.Process.Pid)] || !seen[uint64(b.cmd.Process.Pid)] {
		t.Fatalf("64 new connections reached %v, want both %d and %d", seen, a.cmd.Process.Pid, b.cmd.Process.Pid)
	}
	a.cmd.Process.Signal(syscall.SIGTERM)
	if code, _ := a.waitExit(t); code != 0 {
		t.Fatalf("the stopped process exited %d", code)
	}
	for i := 0; i < 32; i++ {
		if pid := pidOf(t, addr); pid != uint64(b.cmd.Process.Pid) {
			t.Fatalf("connection %d after the stop answered by %d", i, pid)
		}
	}
	resp, err := http.Get("http://" + metrics + "/readyz") // the successor's, alone now
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the metrics port after the stop: %v %v", resp, err)
	}
	resp.Body.Close()
}
