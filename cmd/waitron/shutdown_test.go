package main

import (
	"bufio"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// child is the command running as a separate process (the test binary
// standing in for it), so signals and exit codes are real.
type child struct {
	cmd  *exec.Cmd
	addr string
	logs chan string
	exit chan error
}

func startChild(t *testing.T, args ...string) *child {
	t.Helper()
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	return startChildAt(t, addr, args...)
}

// startChildAt starts the command listening on addr.
func startChildAt(t *testing.T, addr string, args ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"--listen", addr}, args...)...)
	cmd.Env = append(os.Environ(), "WAITRON_TEST_MAIN=1")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ch := &child{cmd: cmd, addr: addr, logs: make(chan string, 1000), exit: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			select {
			case ch.logs <- sc.Text():
			default:
			}
		}
		ch.exit <- cmd.Wait()
	}()
	t.Cleanup(func() { cmd.Process.Kill() })
	deadline := time.After(10 * time.Second)
	for {
		select {
		case l := <-ch.logs:
			if strings.Contains(l, "Serving on http://"+addr) {
				return ch
			}
		case <-deadline:
			t.Fatal("child not serving")
		}
	}
}

func (ch *child) waitExit(t *testing.T) (int, time.Duration) {
	t.Helper()
	start := time.Now()
	select {
	case err := <-ch.exit:
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), time.Since(start)
		}
		return 0, time.Since(start)
	case <-time.After(20 * time.Second):
		t.Fatal("no exit within 20 s")
	}
	return -1, 0
}

// TestGracefulShutdownUnderLoad: SIGTERM with 100 requests in flight lets
// all of them complete, refuses new connections, and exits 0.
func TestGracefulShutdownUnderLoad(t *testing.T) {
	ch := startChild(t, "--threads", "100", "--connection-limit", "200")
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
	time.Sleep(200 * time.Millisecond) // the requests reach their handlers
	ch.cmd.Process.Signal(syscall.SIGTERM)
	time.Sleep(100 * time.Millisecond)
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
	ch := startChild(t)
	c, err := net.Dial("tcp", ch.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /delay/60000 HTTP/1.1\r\nHost: a\r\n\r\n")
	time.Sleep(200 * time.Millisecond)
	ch.cmd.Process.Signal(syscall.SIGTERM)
	time.Sleep(200 * time.Millisecond)
	ch.cmd.Process.Signal(syscall.SIGTERM)
	if code, _ := ch.waitExit(t); code == 0 {
		t.Fatal("forced exit reported success")
	}
}
