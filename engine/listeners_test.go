package engine_test

import (
	"context"
	"io"
	"net/http"
	"os"
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
