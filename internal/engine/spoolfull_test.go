package engine_test

import (
	"bufio"
	"github.com/waitron/waitron/internal/testutil"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/waitron/waitron/internal/engine"
)

// smallDisk mounts a tmpfs of size bytes for the test and removes it when
// the test ends (after the servers it started, which are stopped first).
// It needs root: without, it skips — except under CI=true, where .ci/run
// runs as root and a skip would hide the test.
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("mount tmpfs: %v: %s", err, out)
		}
		t.Skipf("cannot mount a tmpfs (needs root): %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	return dir
}

// TestSpoolFull: with spool_dir on a full disk, a request body that
// cannot be stored gets a 500 that the access log records with its
// request line, and the error log names the client and the request; and
// a response whose output overflows to a spool file that cannot be
// written is cut with close=spool_full, not blamed on the client. Both
// adapters.
func TestSpoolFull(t *testing.T) {
	disk := smallDisk(t, "512k")
	for i, mk := range []func(...string) *testServer{
		func(set ...string) *testServer { return start(t, nil, set...) },
		func(set ...string) *testServer { return startFast(t, nil, set...) },
	} {
		logPath := filepath.Join(t.TempDir(), "access.log")
		s := mk("spool_dir", disk, "inbuf_overflow", "65536", "outbuf_overflow", "65536", "access_log", logPath)

		// A 2 MiB upload: its spool file fills the disk.
		c := s.dial(t)
		go func() {
			io.WriteString(c, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 2097152\r\n\r\n")
			c.Write(make([]byte, 2<<20))
		}()
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != http.StatusInternalServerError {
			t.Fatalf("adapter %d: upload on a full disk: %v %v", i, resp, err)
		}
		b, _ := io.ReadAll(resp.Body)
		if !strings.Contains(string(b), "The request body could not be stored") {
			t.Errorf("adapter %d: 500 body %q", i, b)
		}
		testutil.WaitFor(t, "the error log line", func() bool {
			l := s.logs.String()
			return strings.Contains(l, "the request body could not be stored") && strings.Contains(l, "target=/echo") &&
				strings.Contains(l, "remote=127.0.0.1:")
		})

		// A 64 MiB response to a client that reads nothing: past
		// outbuf_overflow it goes to a spool file, which the disk cannot hold.
		d := s.dial(t)
		io.WriteString(d, "GET /bytes/67108864 HTTP/1.1\r\nHost: a\r\n\r\n")
		testutil.WaitFor(t, "the close for spool_full", func() bool { return s.Stats().Closed[engine.CloseSpoolFull] == 1 })

		testutil.WaitFor(t, "the access-log lines", func() bool {
			b, _ := os.ReadFile(logPath)
			return strings.Contains(string(b), `"POST /echo HTTP/1.1" 500 `) && strings.Contains(string(b), "close=spool_full")
		})
	}
}
