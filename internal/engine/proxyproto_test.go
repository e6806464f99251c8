package engine_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pires/go-proxyproto"

	"github.com/waitron/waitron/internal/engine"
	"github.com/waitron/waitron/internal/testutil"
)

// remoteEcho answers with the request's RemoteAddr.
var remoteEcho = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.RemoteAddr) })

// A PROXY header (v1 or v2, whole or in pieces) from a trusted peer names
// the client; a connection without one is served as usual.
func TestProxyProtocolHeaders(t *testing.T) {
	s := start(t, remoteEcho, "proxy_protocol", "true", "trusted_proxy", "127.0.0.1")
	v2, err := (&proxyproto.Header{Version: 2, Command: proxyproto.PROXY, TransportProtocol: proxyproto.TCPv6,
		SourceAddr:      &net.TCPAddr{IP: net.ParseIP("2001:db8::7"), Port: 4242},
		DestinationAddr: &net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 80}}).Format()
	if err != nil {
		t.Fatal(err)
	}
	get := "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
	for _, tc := range []struct {
		name   string
		pieces []string
		want   string
	}{
		{"v1", []string{"PROXY TCP4 203.0.113.9 127.0.0.1 51000 80\r\n" + get}, "203.0.113.9:51000"},
		{"v1 in pieces", []string{"PRO", "XY TCP4 203.0.113.9 127.0.0.1 51000 80\r", "\n" + get}, "203.0.113.9:51000"},
		{"v2", []string{string(v2) + get}, "[2001:db8::7]:4242"},
		{"v2 in pieces", []string{string(v2[:7]), string(v2[7:15]), string(v2[15:]) + get}, "[2001:db8::7]:4242"},
		{"v1 UNKNOWN", []string{"PROXY UNKNOWN\r\n" + get}, ""},
		{"none", []string{get}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := s.dial(t)
			for _, p := range tc.pieces {
				io.WriteString(c, p)
				serverRead(t, c) // each piece read on its own
			}
			_, body := testutil.ReadResponse(t, bufio.NewReader(c), http.MethodGet)
			want := tc.want
			if want == "" {
				want = c.LocalAddr().String() // the socket peer
			}
			if body != want {
				t.Fatalf("RemoteAddr %q, want %q", body, want)
			}
		})
	}
}

// A malformed, over-long or untrusted header closes the connection before
// any handler sees it, counted as a proxy_protocol close.
func TestProxyProtocolRefused(t *testing.T) {
	trusted := start(t, remoteEcho, "proxy_protocol", "true", "trusted_proxy", "127.0.0.1")
	untrusted := start(t, remoteEcho, "proxy_protocol", "true", "trusted_proxy", "192.0.2.1")
	for _, tc := range []struct {
		name string
		s    *testServer
		raw  string
	}{
		{"malformed", trusted, "PROXY TCP4 not-an-address 127.0.0.1 1 2\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"},
		{"over-long", trusted, "PROXY TCP4 " + strings.Repeat("1", 200)},
		{"untrusted peer", untrusted, "PROXY TCP4 203.0.113.9 127.0.0.1 51000 80\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.s.Stats().Closed[engine.CloseProxyProtocol]
			c := tc.s.dial(t)
			io.WriteString(c, tc.raw)
			if b, _ := io.ReadAll(c); len(b) > 0 {
				t.Fatalf("answered %q", b)
			}
			testutil.WaitFor(t, "the close to be counted", func() bool {
				return tc.s.Stats().Closed[engine.CloseProxyProtocol] == before+1
			})
		})
	}
}

// Behind a real HAProxy (Debian package haproxy) with the configuration
// of docs/deployment/haproxy.cfg, sending PROXY v2 as shown and v1 with
// send-proxy, the handler sees the client's own address.
func TestBehindHAProxy(t *testing.T) {
	haproxy := testutil.RequireTool(t, "haproxy")
	s := start(t, remoteEcho, "proxy_protocol", "true", "trusted_proxy", "127.0.0.1")
	for _, send := range []string{"send-proxy-v2", "send-proxy"} {
		t.Run(send, func(t *testing.T) {
			addr := testutil.FreeAddr(t)
			conf := testutil.DeployedConfig(t, "haproxy.cfg", "bind :80", "bind "+addr, "127.0.0.1:8080 send-proxy-v2", s.addr+" "+send)
			path := filepath.Join(t.TempDir(), "haproxy.cfg")
			os.WriteFile(path, []byte(conf), 0o600)
			logs := testutil.StartHelper(t, addr, haproxy, "-db", "-f", path)
			remoteSeenThrough(t, addr, "haproxy", logs)
		})
	}
}

// Behind nginx's stream module with docs/deployment/nginx-stream.conf
// (Debian packages nginx-light and libnginx-mod-stream), the handler sees
// the client.
func TestBehindNginxStream(t *testing.T) {
	nginx := testutil.RequireTool(t, "nginx")
	module := "/usr/lib/nginx/modules/ngx_stream_module.so"
	if _, err := os.Stat(module); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("nginx's stream module is missing (Debian package libnginx-mod-stream): %v", err)
		}
		t.Skipf("nginx's stream module is missing (Debian package libnginx-mod-stream): %v", err)
	}
	s := start(t, remoteEcho, "proxy_protocol", "true", "trusted_proxy", "127.0.0.1")
	addr := testutil.FreeAddr(t)
	dir := t.TempDir()
	stream := testutil.DeployedConfig(t, "nginx-stream.conf", "listen 80;", "listen "+addr+";", "proxy_pass 127.0.0.1:8080;", "proxy_pass "+s.addr+";")
	conf := fmt.Sprintf(`load_module %s;
worker_processes 1;
error_log %s/error.log;
pid %s/nginx.pid;
daemon off;
events { worker_connections 64; }
%s
`, module, dir, dir, stream)
	path := filepath.Join(dir, "nginx.conf")
	os.WriteFile(path, []byte(conf), 0o600)
	logs := testutil.StartHelper(t, addr, nginx, "-p", dir, "-c", path)
	remoteSeenThrough(t, addr, "nginx's stream proxy", logs)
}
