package engine_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/waitron/waitron/engine"
	"github.com/waitron/waitron/limits"
)

func TestUnixSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.sock")
	var stopped bool
	func() {
		s := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, r.RemoteAddr)
		}), "unix_socket", path, "unix_socket_perms", "660")
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o660 {
			t.Fatalf("socket file mode %v, want a socket with 0660", fi.Mode())
		}
		if !strings.Contains(s.logs.String(), "Serving on unix:"+path) {
			t.Errorf("no Serving line for the socket:\n%s", s.logs.String())
		}
		c := s.dial(t)
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		expectResponse(t, c, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Type: text/plain; charset=utf-8\r\nDate: X\r\nServer: waitron\r\n\r\n@")
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		stopped = true
	}()
	if _, err := os.Stat(path); !stopped || !os.IsNotExist(err) {
		t.Fatalf("socket file still there after shutdown: %v", err)
	}
}

func TestUnixSocketRefusesOtherFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "precious.txt")
	if err := os.WriteFile(path, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	o := limits.Default()
	o.Set("unix_socket", path)
	if _, err := engine.New(http.NotFoundHandler(), o, nil); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("New with a regular file as unix_socket: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "keep me" {
		t.Fatal("the file was touched")
	}
}

// TestBacklog reads the listening socket's accept-queue length back from
// the kernel (ss reports it as Send-Q for listeners).
func TestBacklog(t *testing.T) {
	ss := requireTool(t, "ss")
	s := start(t, nil, "backlog", "37")
	_, port, _ := net.SplitHostPort(s.addr)
	out, err := exec.Command(ss, "-ltnH", "sport = :"+port).CombinedOutput()
	if err != nil {
		t.Fatalf("ss: %v\n%s", err, out)
	}
	fields := strings.Fields(string(out))
	if len(fields) < 3 || fields[0] != "LISTEN" || fields[2] != "37" {
		t.Fatalf("ss -ltn for port %s: %q, want Send-Q 37", port, out)
	}
}

// requireTool finds an external program; under CI (CI=true) a missing one
// fails the test instead of skipping it, since .ci/run installs it.
func requireTool(t *testing.T, name string) string {
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
