package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// serverHeader returns the Server field of the child's answer to /plaintext.
func serverHeader(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/plaintext")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.Header.Get("Server")
}

// TestVersion: --version prints the build's version and Go release and
// exits 0, serving nothing.
func TestVersion(t *testing.T) {
	cmd := exec.Command(os.Args[0], "--version")
	cmd.Env = append(os.Environ(), "WAITRON_TEST_MAIN=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if s := string(out); !strings.HasPrefix(s, "waitron ") || !strings.Contains(s, runtime.Version()) {
		t.Fatalf("--version: %q", s)
	}
}

// TestOptionsFromEnvironment: every option is also taken from its
// WAITRON_<NAME> variable, over the --config file and under the flags; a
// bad value is refused naming the variable.
func TestOptionsFromEnvironment(t *testing.T) {
	ini := filepath.Join(t.TempDir(), "app.ini")
	os.WriteFile(ini, []byte("[server:main]\nident = fromfile\nthreads = 2\n"), 0o644)
	byEnv := startChildSpec(t, childSpec{env: []string{"WAITRON_IDENT=fromenv"}}, "--config", ini)
	if got := serverHeader(t, byEnv.addr); got != "fromenv" {
		t.Errorf("environment over the file: Server %q", got)
	}
	byFlag := startChildSpec(t, childSpec{env: []string{"WAITRON_IDENT=fromenv"}}, "--config", ini, "--ident", "fromflag")
	if got := serverHeader(t, byFlag.addr); got != "fromflag" {
		t.Errorf("flag over the environment: Server %q", got)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "WAITRON_TEST_MAIN=1", "WAITRON_THREADS=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(stderr.String(), "WAITRON_THREADS must be at least 1") {
		t.Errorf("WAITRON_THREADS=0: %v, %q", err, stderr.String())
	}
}

// TestLogLevelAndFormat: --log-format json writes one JSON object per
// line; --log-level debug shows the debug lines (a connection's close).
func TestLogLevelAndFormat(t *testing.T) {
	ch := startChild(t, "--log-format", "json", "--log-level", "debug")
	serverHeader(t, ch.addr)
	http.DefaultClient.CloseIdleConnections()
	ch.waitLog(t, `"msg":"connection closed"`)
	for _, l := range strings.Split(ch.log(), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("not a JSON line: %q", l)
		}
	}
}

// TestShutdownTimeout: a graceful shutdown waits for a request in flight
// only for --shutdown-timeout, then closes the connections left and
// exits 1, saying so.
func TestShutdownTimeout(t *testing.T) {
	ch := startChildSpec(t, childSpec{withMetrics: true}, "--shutdown-timeout", "200ms")
	c, err := net.Dial("tcp", ch.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "GET /delay/10000 HTTP/1.1\r\nHost: a\r\n\r\n")
	ch.waitGauge(t, "waitron_handlers_running", 1)
	ch.cmd.Process.Signal(syscall.SIGTERM)
	if code, _ := ch.waitExit(t); code != 1 {
		t.Errorf("exit code %d after the shutdown timed out", code)
	}
	if !strings.Contains(ch.log(), "shutdown_timeout passed") {
		t.Errorf("no line saying the timeout passed:\n%s", ch.log())
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(c); err != nil {
		t.Errorf("the connection in flight: %v (want it closed)", err)
	}
}

// TestSIGHUPReopensAccessLog: after logrotate moves the access log away,
// SIGHUP makes the command write what it holds to the old file and the
// next lines to a new file at the path. (The line of a response is put
// after the response left, so the test waits for it to be written
// before moving the file; the exit writes out the rest.)
func TestSIGHUPReopensAccessLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	ch := startChild(t, "--access-log", path)
	get := func(p string) {
		resp, err := http.Get("http://" + ch.addr + p)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	get("/status/201")
	waitFileHas(t, path, "/status/201")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	ch.cmd.Process.Signal(syscall.SIGHUP)
	ch.waitLog(t, "access log reopened")
	get("/status/202")
	ch.cmd.Process.Signal(syscall.SIGTERM)
	if code, _ := ch.waitExit(t); code != 0 {
		t.Errorf("exit code %d", code)
	}
	old, _ := os.ReadFile(path + ".1")
	cur, _ := os.ReadFile(path)
	if !strings.Contains(string(old), "/status/201") || strings.Contains(string(old), "/status/202") ||
		!strings.Contains(string(cur), "/status/202") || strings.Contains(string(cur), "/status/201") {
		t.Errorf("rotated:\n%s\nnew:\n%s", old, cur)
	}
}

// waitFileHas waits (at most 10 s) until the file at path holds s,
// woken by the kernel (inotify) each time the file is written.
func waitFileHas(t *testing.T, path, s string) {
	t.Helper()
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if _, err := unix.InotifyAddWatch(fd, path, unix.IN_MODIFY); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	for deadline := time.Now().Add(10 * time.Second); ; {
		if b, _ := os.ReadFile(path); strings.Contains(string(b), s) {
			return
		}
		left := time.Until(deadline)
		if left <= 0 {
			t.Fatalf("%s never held %q", path, s)
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		unix.Poll(fds, int(left.Milliseconds())+1)
		unix.Read(fd, buf) // the events themselves say nothing more
	}
}
