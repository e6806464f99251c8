// Package testutil holds helpers shared by waitron's tests.
package testutil

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	gnetpool "github.com/panjf2000/gnet/v2/pkg/pool/goroutine"
	"github.com/valyala/fasthttp"
	"go.uber.org/goleak"
)

// RequireTool finds an external program. Under CI (CI=true) a missing one
// fails the test instead of skipping it, since .ci/run installs it.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required under CI: %v", name, err)
		}
		t.Skipf("%s not installed", name)
	}
	return p
}

// SyncBuffer is a bytes.Buffer safe for concurrent writers, for capturing
// a server's log.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// FreeAddr returns a loopback address no one listens on now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// ioTimeout bounds the waits of these helpers.
const ioTimeout = 10 * time.Second

// WaitFor polls cond every 10 ms until it holds, failing the test after
// ioTimeout; for conditions no event announces (a helper process
// listening, a count in another process).
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(ioTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// StartHelper runs a helper process (nginx, haproxy) until the test ends —
// stopped by its own PID, with SIGINT and then SIGKILL — and waits until
// addr accepts connections. It returns what the process writes.
func StartHelper(t testing.TB, addr string, name string, args ...string) *SyncBuffer {
	t.Helper()
	cmd := exec.Command(name, args...)
	out := &SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	WaitFor(t, filepath.Base(name)+" to listen on "+addr, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return out
}

// DeployedConfig reads a configuration shown in docs/deployment.md and
// points it at this test's addresses: every replacement must apply, so a
// changed document cannot silently stop being what the test runs.
func DeployedConfig(t testing.TB, name string, replace ...string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(), "docs", "deployment", name))
	if err != nil {
		t.Fatal(err)
	}
	conf := string(b)
	for i := 0; i+1 < len(replace); i += 2 {
		if !strings.Contains(conf, replace[i]) {
			t.Fatalf("docs/deployment/%s no longer contains %q", name, replace[i])
		}
		conf = strings.ReplaceAll(conf, replace[i], replace[i+1])
	}
	return conf
}

// StartNginx runs nginx with the site of docs/deployment/nginx-site.conf
// in front of upstream, and returns its address.
func StartNginx(t testing.TB, nginx, upstream string) string {
	dir := t.TempDir()
	addr := FreeAddr(t)
	site := DeployedConfig(t, "nginx-site.conf", "server 127.0.0.1:8080;", "server "+upstream+";", "listen 80;", "listen "+addr+";")
	conf := fmt.Sprintf(`worker_processes 1;
error_log %[1]s/error.log;
pid %[1]s/nginx.pid;
daemon off;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  keepalive_timeout 5s;
%[2]s
}
`, dir, site)
	path := filepath.Join(dir, "nginx.conf")
	os.WriteFile(path, []byte(conf), 0o600)
	StartHelper(t, addr, nginx, "-p", dir, "-c", path)
	return addr
}

// repoRoot is the module's root directory, found from this file's path,
// so that tests in any package (or the tests module) read its docs.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// RunCheckingLeaks runs a package's tests (m.Run) and fails the package if
// any test left a goroutine behind once its servers were shut down.
// Goroutines that exist before any test are not ours, nor are the workers
// of gnet's package-level pool (gnet registers the connections of adopted
// sockets through it), which would linger for ten seconds idle: that pool
// is released once the tests are done, before the check (goleak retries
// while goroutines finish exiting). fasthttp's process-wide Date
// refresher, which its first response starts, is fasthttp's and stays by
// design; so is the cleaner of the reference fasthttp servers' worker
// pools, which sleeps its 10 s out after they stop.
func RunCheckingLeaks(m *testing.M) int {
	before := goleak.IgnoreCurrent()
	code := m.Run()
	if code == 0 {
		gnetpool.DefaultWorkerPool.Release() // its idle workers exit now
		if err := goleak.Find(before, goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
			goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2")); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	return code
}

// FastPeer serves h with fasthttp's own server on 127.0.0.1:0, as the
// reference for what a fasthttp handler's responses look like, and stops
// it when the test ends.
func FastPeer(t testing.TB, h fasthttp.RequestHandler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fasthttp.Server{Handler: h, Name: "waitron", MaxRequestBodySize: 1 << 30}
	done := make(chan struct{})
	go func() { s.Serve(ln); close(done) }()
	t.Cleanup(func() {
		s.ShutdownWithContext(context.Background())
		<-done
	})
	return ln.Addr().String()
}

// ReadResponse reads one response to a request with method from br, body
// included.
func ReadResponse(t testing.TB, br *bufio.Reader, method string) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("reading the response to %s: %v", method, err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the body: %v", err)
	}
	return resp, string(b)
}
