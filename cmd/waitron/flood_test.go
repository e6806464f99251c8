package main

import (
	"bufio"
	"io"
	"net"
	"os"
	"os/exec"
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
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(os.Args[0], "--listen", addr, "--connection-limit", "10", "--backlog", "10")
	cmd.Env = append(os.Environ(), "WAITRON_TEST_MAIN=1", "WAITRON_TEST_NOFILE=48")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	logged := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs.WriteString(sc.Text() + "\n")
		}
		close(logged)
	}()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("exit: %v", err)
			}
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			t.Error("no exit after SIGTERM")
		}
		<-logged
		t.Logf("child log:\n%s", logs.String())
		if !strings.Contains(logs.String(), "restarting them") {
			t.Errorf("no restart logged:\n%s", logs.String())
		}
	}()
	get := func() (string, error) {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			return "", err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "GET /plaintext HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
		b, err := io.ReadAll(c)
		return string(b), err
	}
	// Wait until it serves.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if b, err := get(); err == nil && strings.HasSuffix(b, "Hello, World!") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("not serving")
		}
		time.Sleep(50 * time.Millisecond)
	}
	var flood []net.Conn
	for i := 0; i < 150; i++ {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			flood = append(flood, c)
		}
	}
	time.Sleep(300 * time.Millisecond) // let the accepts happen
	for _, c := range flood {
		c.Close()
	}
	// Served again within a bounded time after the flood.
	deadline = time.Now().Add(15 * time.Second)
	for {
		b, err := get()
		if err == nil && strings.HasSuffix(b, "Hello, World!") {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("not serving after the flood: %q %v", b, err)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}
