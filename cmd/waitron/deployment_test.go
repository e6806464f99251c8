package main

import (
	"bufio"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/waitron/waitron/internal/testutil"
)

// unitValue returns the value of key in a systemd unit file's text.
func unitValue(t *testing.T, unit, key string) string {
	t.Helper()
	for _, line := range strings.Split(unit, "\n") {
		if v, ok := strings.CutPrefix(line, key+"="); ok {
			return v
		}
	}
	t.Fatalf("no %s= in the unit", key)
	return ""
}

// The systemd units of docs/deployment: systemd-analyze accepts them, and
// the command line of waitron.service, started by systemd's own
// socket-activation tool on the socket of waitron.socket, serves on it,
// answers /readyz on its metrics listener, and stops on SIGTERM with exit 0.
func TestDeploymentSystemdUnits(t *testing.T) {
	analyze := testutil.RequireTool(t, "systemd-analyze")
	activate := testutil.RequireTool(t, "systemd-socket-activate")
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join("..", "..", "docs", "deployment", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	socket, service := read("waitron.socket"), read("waitron.service")
	exec0 := strings.Fields(unitValue(t, service, "ExecStart"))
	dir := t.TempDir()
	// verify checks that ExecStart's program exists: point it at one that does.
	os.WriteFile(filepath.Join(dir, "waitron.socket"), []byte(socket), 0o644)
	os.WriteFile(filepath.Join(dir, "waitron.service"), []byte(strings.Replace(service, exec0[0], "/bin/true", 1)), 0o644)
	if out, err := exec.Command(analyze, "verify", filepath.Join(dir, "waitron.socket"), filepath.Join(dir, "waitron.service")).CombinedOutput(); err != nil {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	if got := unitValue(t, socket, "ListenStream"); got != "127.0.0.1:8080" {
		t.Fatalf("ListenStream=%s; the test binds the same address form on a free port", got)
	}
	addr, ops := testutil.FreeAddr(t), testutil.FreeAddr(t)
	args := []string{"-l", addr, "-E", "WAITRON_TEST_MAIN=1", os.Args[0]}
	for _, a := range exec0[1:] {
		args = append(args, strings.Replace(a, "127.0.0.1:9090", ops, 1))
	}
	cmd := exec.Command(activate, args...)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() { cmd.Process.Kill() })
	// systemd-socket-activate says when it listens; it accepts nothing
	// itself, but starts the command at the first connection, passing it
	// the listening socket.
	for deadline := time.After(10 * time.Second); ; {
		select {
		case l := <-lines:
			if !strings.Contains(l, "Listening on") {
				continue
			}
		case <-deadline:
			t.Fatal("systemd-socket-activate did not say it listens")
		}
		break
	}
	expectPlaintext(t, addr, "the activated socket")
	resp, err := http.Get("http://" + ops + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/readyz %d", resp.StatusCode)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no exit within 20 s of SIGTERM")
	}
}

// TestDeploymentTLS: the command with docs/deployment/waitron-tls.ini
// serves HTTPS and HTTP/2 on its tls_listen address beside the plain one,
// and after the pair is renewed on disk, SIGHUP makes new handshakes get
// the new one.
func TestDeploymentTLS(t *testing.T) {
	certs := testutil.NewCerts(t)
	plain, secure := testutil.FreeAddr(t), testutil.FreeAddr(t)
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "fullchain.pem"), filepath.Join(dir, "privkey.pem")
	copyFile := func(from, to string) {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to+".new", b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(to+".new", to); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(certs.CertFile, cert)
	copyFile(certs.KeyFile, key)
	ini := filepath.Join(dir, "waitron.ini")
	conf := testutil.DeployedConfig(t, "waitron-tls.ini", "127.0.0.1:8080", plain, "0.0.0.0:8443", secure,
		"/etc/waitron/tls/fullchain.pem", cert, "/etc/waitron/tls/privkey.pem", key)
	if err := os.WriteFile(ini, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	ch := startChildAt(t, plain, "--config", ini)
	ch.waitLog(t, "Serving on https://"+secure)
	get := func(pki *testutil.Certs) (string, error) {
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: pki.ClientConfig(), ForceAttemptHTTP2: true}}
		defer c.CloseIdleConnections()
		resp, err := c.Get("https://" + secure + "/plaintext")
		if err != nil {
			return "", err
		}
		resp.Body.Close()
		return resp.Proto, nil
	}
	if proto, err := get(certs); err != nil || proto != "HTTP/2.0" {
		t.Fatalf("HTTPS: %q, %v", proto, err)
	}
	renewed := testutil.NewCerts(t)
	copyFile(renewed.CertFile, cert)
	copyFile(renewed.KeyFile, key)
	ch.cmd.Process.Signal(syscall.SIGHUP)
	ch.waitLog(t, "TLS certificate loaded")
	if _, err := get(renewed); err != nil {
		t.Fatalf("after the renewal and SIGHUP: %v", err)
	}
}
