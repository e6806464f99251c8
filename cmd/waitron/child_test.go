package main

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/waitron/waitron/internal/testutil"
)

// child is the command running as a separate process (the test binary
// standing in for it), so signals, exit codes and descriptor limits are
// real. Every test that runs the command starts it through startChild.
type child struct {
	cmd     *exec.Cmd
	addr    string
	metrics string // its metrics_listen address, when started withMetrics
	exit    chan error

	mu    sync.Mutex
	lines []string // everything it logged so far
	more  chan struct{}
}

// childSpec is how a child starts, beyond its arguments.
type childSpec struct {
	addr        string   // where it listens; a free port when empty
	env         []string // added to the environment
	withMetrics bool     // also serve metrics_listen on a free port (ch.gauge reads it)
}

func startChild(t *testing.T, args ...string) *child {
	t.Helper()
	return startChildSpec(t, childSpec{}, args...)
}

// startChildAt starts the command listening on addr.
func startChildAt(t *testing.T, addr string, args ...string) *child {
	t.Helper()
	return startChildSpec(t, childSpec{addr: addr}, args...)
}

// startChildSpec starts the command as spec says and returns once it logs
// that it serves; it is killed, by its own PID, when the test ends.
func startChildSpec(t *testing.T, spec childSpec, args ...string) *child {
	t.Helper()
	if spec.addr == "" {
		spec.addr = testutil.FreeAddr(t)
	}
	ch := &child{addr: spec.addr, exit: make(chan error, 1), more: make(chan struct{}, 1)}
	args = append([]string{"--listen", spec.addr}, args...)
	if spec.withMetrics {
		ch.metrics = testutil.FreeAddr(t)
		args = append(args, "--metrics-listen", ch.metrics)
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), "WAITRON_TEST_MAIN=1"), spec.env...)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ch.cmd = cmd
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			ch.mu.Lock()
			ch.lines = append(ch.lines, sc.Text())
			ch.mu.Unlock()
			select {
			case ch.more <- struct{}{}:
			default:
			}
		}
		ch.exit <- cmd.Wait()
	}()
	t.Cleanup(func() { cmd.Process.Kill() })
	ch.waitLog(t, "Serving on http://"+spec.addr)
	return ch
}

// waitLog waits (at most 10 s) until the child has logged a line
// containing s.
func (ch *child) waitLog(t *testing.T, s string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for !strings.Contains(ch.log(), s) {
		select {
		case <-ch.more:
		case <-deadline:
			t.Fatalf("the child did not log %q; it logged:\n%s", s, ch.log())
		}
	}
}

// log returns everything the child logged so far.
func (ch *child) log() string {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return strings.Join(ch.lines, "\n")
}

// waitExit waits (at most 20 s) for the child to exit and returns its
// exit code and how long the wait took.
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

// waitGauge waits (at most 10 s) until the child's /metrics reports the
// metric name (without labels) at want: the server's own account of its
// state, so the test acts on what it did rather than on time. Each scrape
// is a round trip to the child, which paces the loop.
func (ch *child) waitGauge(t *testing.T, name string, want float64) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		if v, ok := ch.gauge(name); ok && v == want {
			return
		} else if ok {
			last = strconv.FormatFloat(v, 'g', -1, 64)
		}
	}
	t.Fatalf("%s never reached %g (last %s)", name, want, last)
}

// gauge reads one metric without labels from the child's /metrics.
func (ch *child) gauge(name string) (float64, bool) {
	resp, err := http.Get("http://" + ch.metrics + "/metrics")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range bytes.Split(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte(name+" ")); ok {
			f, err := strconv.ParseFloat(string(v), 64)
			return f, err == nil
		}
	}
	return 0, false
}

// waitDraining waits until the child has logged that its graceful
// shutdown began (new connections are refused from then on).
func (ch *child) waitDraining(t *testing.T) {
	t.Helper()
	ch.waitLog(t, "draining: new connections are refused")
}
