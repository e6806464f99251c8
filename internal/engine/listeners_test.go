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
	"time"

	"github.com/waitron/waitron/internal/engine"
	"github.com/waitron/waitron/internal/targetapp"
	"github.com/waitron/waitron/internal/testutil"
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
	ss := testutil.RequireTool(t, "ss")
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

// TestSocketsFromGo: listeners made by the caller are served, reported by
// Addrs, and closed at shutdown.
func TestSocketsFromGo(t *testing.T) {
	var lns []net.Listener
	for i := 0; i < 2; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
	}
	o := limits.Default()
	o.Sockets = lns
	srv, err := engine.New(targetapp.NewWith(testCaps), o, nil)
	if err != nil {
		t.Fatal(err)
	}
	go srv.ListenAndServe()
	<-srv.Ready()
	if len(srv.Addrs()) != 2 {
		t.Fatalf("Addrs = %v", srv.Addrs())
	}
	for _, ln := range lns {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), ioTimeout)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(ioTimeout))
		io.WriteString(c, "GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n")
		expectResponse(t, c, plaintextResp)
		c.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := lns[0].Accept(); err == nil {
		t.Fatal("listener still open after Shutdown")
	}
}

func TestSocketsRules(t *testing.T) {
	tcp, _ := net.Listen("tcp", "127.0.0.1:0")
	defer tcp.Close()
	ux, _ := net.Listen("unix", filepath.Join(t.TempDir(), "s.sock"))
	defer ux.Close()
	o := limits.Default()
	o.Sockets = []net.Listener{tcp, ux}
	if _, err := engine.New(targetapp.NewWith(testCaps), o, nil); err == nil || !strings.Contains(err.Error(), "may not be mixed") {
		t.Fatalf("mixed sockets: %v", err)
	}
	o = limits.Default()
	o.Sockets = []net.Listener{tcp}
	o.Set("port", "1")
	if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "host or port may not be set if sockets is set") {
		t.Fatalf("sockets with port: %v", err)
	}
	o = limits.Default()
	o.Set("sockets", "fd:3")
	if err := o.Validate(); err == nil || !strings.Contains(err.Error(), `only "systemd"`) {
		t.Fatalf("sockets=fd:3: %v", err)
	}
}

// TestHostPortAndListeners: host and port build the listener; several
// listen entries give one listener and one Serving line each.
func TestHostPortAndListeners(t *testing.T) {
	s := start(t, nil, "host", "127.0.0.1", "port", "0")
	c := s.dial(t)
	io.WriteString(c, "GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n")
	expectResponse(t, c, plaintextResp)

	entries := "127.0.0.1:0 127.0.0.2:0"
	if ln, err := net.Listen("tcp6", "[::1]:0"); err == nil { // IPv6 loopback, where the machine has it
		ln.Close()
		entries += " [::1]:0"
	}
	s = start(t, nil, "listen", entries)
	addrs := s.Addrs()
	if len(addrs) != len(strings.Fields(entries)) {
		t.Fatalf("listeners %v for %q", addrs, entries)
	}
	for _, a := range addrs {
		if strings.Count(s.logs.String(), "Serving on http://"+a.String()) != 1 {
			t.Errorf("no single Serving line for %s:\n%s", a, s.logs.String())
		}
		c, err := net.DialTimeout("tcp", a.String(), ioTimeout)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(ioTimeout))
		io.WriteString(c, "GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n")
		expectResponse(t, c, plaintextResp)
		c.Close()
	}
}
