package main

import (
	"bufio"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/waitron/waitron/internal/testutil"
)

// TestMain lets the test binary stand in for the command: with
// WAITRON_TEST_MAIN=1 it runs run() on its arguments and exits.
func TestMain(m *testing.M) {
	if os.Getenv("WAITRON_TEST_MAIN") == "1" {
		if n, err := strconv.ParseUint(os.Getenv("WAITRON_TEST_NOFILE"), 10, 64); err == nil {
			lim := syscall.Rlimit{Cur: n, Max: n}
			if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
				panic(err)
			}
		}
		sig := make(chan os.Signal, 2)
		signalNotify(sig)
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, sig, nil))
	}
	os.Exit(m.Run())
}

// TestSystemdSocketActivation passes a listening socket as descriptor 3
// with LISTEN_FDS=1 and LISTEN_PID set to the command's own pid (sh execs
// it, keeping its pid), as systemd does.
func TestSystemdSocketActivation(t *testing.T) {
	sh := testutil.RequireTool(t, "sh")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // the child holds the socket through f
	cmd := exec.Command(sh, "-c", `LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" --sockets systemd`, os.Args[0])
	cmd.Env = append(os.Environ(), "WAITRON_TEST_MAIN=1")
	cmd.ExtraFiles = []*os.File{f}
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("command exit: %v", err)
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Error("command did not exit after SIGTERM")
		}
	}()
	deadline := time.After(10 * time.Second)
	for serving := false; !serving; {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("command exited before serving")
			}
			serving = strings.Contains(l, "Serving on http://"+addr)
		case <-deadline:
			t.Fatal("no Serving line for the inherited socket")
		}
	}
	expectPlaintext(t, addr, "the inherited socket")
}

// expectPlaintext asks addr for /plaintext on a new connection and fails
// unless the target app answers it.
func expectPlaintext(t *testing.T, addr, over string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET /plaintext HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	b, _ := io.ReadAll(c)
	if !strings.HasPrefix(string(b), "HTTP/1.1 200 OK") || !strings.HasSuffix(string(b), "Hello, World!") {
		t.Fatalf("response over %s: %q", over, b)
	}
}

func TestSystemdWithoutActivation(t *testing.T) {
	var out, errb strings.Builder
	if code := run([]string{"--sockets", "systemd"}, &out, &errb, nil, nil); code == 0 ||
		!strings.Contains(errb.String(), "LISTEN_PID and LISTEN_FDS are not set") {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
}
