package main

import (
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDescriptorFlood runs the command with RLIMIT_NOFILE=48 and opens 150
// connections at once: accept then fails with EMFILE, which stops gnet's
// whole engine. waitron must log why, start the event loops again, and
// serve a client once the flood is over.
func TestDescriptorFlood(t *testing.T) {
	ch := startChildSpec(t, childSpec{env: []string{"WAITRON_TEST_NOFILE=48"}}, "--connection-limit", "10", "--backlog", "10")
	defer func() {
		ch.cmd.Process.Signal(syscall.SIGTERM)
		if code, _ := ch.waitExit(t); code != 0 {
			t.Errorf("exit code %d after SIGTERM", code)
		}
		t.Logf("child log:\n%s", ch.log())
	}()
	get := func() (string, error) {
		c, err := net.DialTimeout("tcp", ch.addr, 2*time.Second)
		if err != nil {
			return "", err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "GET /plaintext HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
		b, err := io.ReadAll(c)
		return string(b), err
	}
	if b, err := get(); err != nil || !strings.HasSuffix(b, "Hello, World!") {
		t.Fatalf("before the flood: %q %v", b, err)
	}
	var flood []net.Conn
	for i := 0; i < 150; i++ {
		if c, err := net.DialTimeout("tcp", ch.addr, time.Second); err == nil {
			flood = append(flood, c)
		}
	}
	// The event the test is about: accept failed for want of descriptors,
	// and the server says it restarts its event loops.
	ch.waitLog(t, "restarting them")
	for _, c := range flood {
		c.Close()
	}
	// Served again (bounded retries: the restart completes on its own
	// schedule once descriptors are free).
	var b string
	var err error
	for i := 0; i < 150; i++ {
		if b, err = get(); err == nil && strings.HasSuffix(b, "Hello, World!") {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("not serving after the flood: %q %v", b, err)
}
