package tests

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	cws "github.com/coder/websocket"

	"github.com/waitron/waitron"
	"github.com/waitron/waitron/internal/testutil"
)

// tlsServers serves h over TLS with waitron (the options in set) and with
// net/http (HTTP/2 by ALPN as ListenAndServeTLS offers it, the same
// certificate; client certificates required when mutual), and returns
// both, and waitron's server.
func tlsServers(t *testing.T, h http.Handler, certs *testutil.Certs, mutual bool, set ...string) ([]peerServer, *server) {
	t.Helper()
	set = append([]string{"tls_listen", "127.0.0.1:0", "certfile", certs.CertFile, "keyfile", certs.KeyFile}, set...)
	if mutual {
		set = append(set, "client_ca", certs.CAFile)
	}
	w := start(t, h, set...)
	std := httptest.NewUnstartedServer(h)
	std.Config.ErrorLog = log.New(io.Discard, "", 0)
	std.EnableHTTP2 = true
	// What ListenAndServeTLS offers (httptest would offer h2 alone).
	std.TLS = &tls.Config{Certificates: []tls.Certificate{certs.Server}, NextProtos: []string{"h2", "http/1.1"}}
	for _, o := range set {
		if o == "1.3" {
			std.TLS.MinVersion = tls.VersionTLS13
		}
	}
	if mutual {
		std.TLS.ClientCAs, std.TLS.ClientAuth = certs.Pool, tls.RequireAndVerifyClientCert
	}
	std.StartTLS()
	t.Cleanup(std.Close)
	return []peerServer{{"waitron", w.Addrs()[1].String()}, {"net/http", std.Listener.Addr().String()}}, w
}

func tlsHello(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body) // unread, HTTP/2 servers reset the stream after the response (curl: exit 92)
	peers := 0
	if r.TLS != nil {
		peers = len(r.TLS.PeerCertificates)
	}
	w.Header().Set("Content-Type", "text/plain")
	fmt.Fprintf(w, "%s %s %s tls=%v peers=%d\n", r.Method, r.URL.Path, r.Proto, r.TLS != nil, peers)
}

// curlOut runs curl with args and returns its output: the status line,
// the head's fields sorted (Date masked, waitron's Server line dropped),
// the body.
func curlOut(t *testing.T, curl string, args ...string) string {
	t.Helper()
	out, err := exec.Command(curl, append([]string{"-sS", "-D", "-", "--max-time", "10"}, args...)...).CombinedOutput()
	if err != nil {
		return "curl failed" // the failure is compared, not its exit code (which side saw the close first)
	}
	// waitron names itself (ident) where net/http names nobody; the
	// fields' order is not compared.
	head, body, _ := strings.Cut(string(out), "\r\n\r\n")
	lines := strings.Split(anyDateRE.ReplaceAllString(head+"\r\n", "Date: X\r\n"), "\r\n")
	lines = slices.DeleteFunc(lines, func(l string) bool { return strings.EqualFold(l, "Server: waitron") })
	slices.Sort(lines[1:])
	return strings.Join(lines, "\n") + "\n\n" + body
}

// TestTLSCurl: curl over TLS, HTTP/1.1, with and without a client
// certificate under client_ca: the same answers from waitron as from
// net/http.
func TestTLSCurl(t *testing.T) {
	curl := testutil.RequireTool(t, "curl")
	certs := testutil.NewCerts(t)
	for _, mutual := range []bool{false, true} {
		srvs, _ := tlsServers(t, http.HandlerFunc(tlsHello), certs, mutual)
		for _, args := range [][]string{
			{"--http1.1"}, {"--http2"}, {"--http2", "-X", "POST", "--data-binary", "hello"},
			{"--http1.1", "-X", "POST", "--data-binary", "hello"},
			{"--http1.1", "--cert", certs.ClientCert, "--key", certs.ClientKey},
		} {
			var got [2]string
			for i, s := range srvs {
				got[i] = curlOut(t, curl, append(args, "--cacert", certs.CAFile, "https://"+s.addr+"/path")...)
			}
			if got[0] != got[1] {
				t.Errorf("mutual=%v curl %v:\nwaitron:\n%s\nnet/http:\n%s", mutual, args, got[0], got[1])
			}
			if want := strings.TrimPrefix(args[0], "--http"); !mutual && !strings.Contains(got[0], "HTTP/"+want) {
				t.Errorf("curl %v: not over HTTP/%s:\n%s", args, want, got[0])
			}
		}
	}
}

// anyDateRE is dateRE for HTTP/2's lower-case field names too.
var anyDateRE = regexp.MustCompile(`(?i)Date: [^\r]*\r\n`)

var (
	sessionRE = regexp.MustCompile(`(?m)^New, (\S+), Cipher is (\S+)`)
	alpnRE    = regexp.MustCompile(`(?m)^(ALPN protocol: \S+|No ALPN negotiated)`)
)

// TestTLSVersionsAndALPN: openssl s_client's view of each server, TLS 1.2
// and 1.3, with ALPN offers, and with tls_min_version 1.3 (MinVersion on
// net/http): the same version and protocol chosen, or the same refusal.
func TestTLSVersionsAndALPN(t *testing.T) {
	openssl := testutil.RequireTool(t, "openssl")
	certs := testutil.NewCerts(t)
	established := 0
	for _, minVersion := range []string{"1.2", "1.3"} {
		srvs, _ := tlsServers(t, http.HandlerFunc(tlsHello), certs, false, "tls_min_version", minVersion)
		for _, args := range [][]string{
			{"-tls1_2"}, {"-tls1_3"}, {"-tls1_3", "-alpn", "http/1.1"}, {"-tls1_2", "-alpn", "h2,http/1.1"}, {"-alpn", "h2"},
		} {
			var got [2]string
			for i, s := range srvs {
				cmd := exec.Command(openssl, append([]string{"s_client", "-connect", s.addr, "-CAfile", certs.CAFile}, args...)...)
				cmd.Stdin = strings.NewReader("")
				out, _ := cmd.CombinedOutput()
				p, a := sessionRE.FindSubmatch(out), alpnRE.FindSubmatch(out)
				switch {
				case p == nil || string(p[1]) == "(NONE)":
					got[i] = "refused"
				case a == nil:
					got[i] = string(p[1]) + " " + string(p[2])
				default:
					got[i] = string(p[1]) + " " + string(p[2]) + " " + string(a[1])
					established++
				}
			}
			if got[0] != got[1] {
				t.Errorf("tls_min_version %s, s_client %v: waitron %q, net/http %q", minVersion, args, got[0], got[1])
			}
		}
	}
	if established < 12 {
		t.Errorf("%d connections established with an ALPN answer, want 12: the output was not understood", established)
	}
}

// TestTLSWebSocket: coder/websocket over wss echoes as over ws, on
// waitron as on net/http.
func TestTLSWebSocket(t *testing.T) {
	certs := testutil.NewCerts(t)
	h := http.HandlerFunc(coderEchoHandler)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: certs.ClientConfig()}}
	srvs, _ := tlsServers(t, h, certs, false)
	for _, s := range srvs {
		t.Run(s.name, func(t *testing.T) { coderEcho(t, "wss://"+s.addr+"/", &cws.DialOptions{HTTPClient: client}) })
	}
}

// TestTLSRenegotiationRefused: a TLS 1.2 client that asks to renegotiate
// (openssl s_client's R command) is refused with an alert and closed, on
// waitron (close reason tls_renegotiation) as on net/http.
func TestTLSRenegotiationRefused(t *testing.T) {
	openssl := testutil.RequireTool(t, "openssl")
	certs := testutil.NewCerts(t)
	srvs, w := tlsServers(t, http.HandlerFunc(tlsHello), certs, false)
	for _, s := range srvs {
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		cmd := exec.CommandContext(ctx, openssl, "s_client", "-tls1_2", "-connect", s.addr, "-CAfile", certs.CAFile)
		in, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(in, "R\n") // stdin stays open: s_client ends when the server closes
		_ = cmd.Wait()
		in.Close()
		cancel()
		if !strings.Contains(out.String(), "RENEGOTIATING") || !strings.Contains(out.String(), "alert") {
			t.Errorf("%s: s_client said:\n%s", s.name, out.String())
		}
	}
	testutil.WaitFor(t, "the refusal counted as tls_renegotiation", func() bool {
		return w.Stats().Closed[waitron.CloseTLSRenegotiation] == 1
	})
}

// TestH2CCurl: curl --http2-prior-knowledge (h2c) gets the same answers
// from waitron's plain listener as from net/http with
// Protocols.UnencryptedHTTP2.
func TestH2CCurl(t *testing.T) {
	curl := testutil.RequireTool(t, "curl")
	w := start(t, http.HandlerFunc(tlsHello))
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	std := httptest.NewUnstartedServer(http.HandlerFunc(tlsHello))
	std.Config.Protocols = p
	std.Start()
	t.Cleanup(std.Close)
	for _, args := range [][]string{{"--http2-prior-knowledge"}, {"--http2-prior-knowledge", "-X", "POST", "--data-binary", "hello"}, {"--http1.1"}} {
		var got [2]string
		for i, a := range []string{w.addr, std.Listener.Addr().String()} {
			got[i] = curlOut(t, curl, append(args, "http://"+a+"/path")...)
		}
		if got[0] != got[1] || !strings.Contains(got[0], "tls=false") || strings.Contains(args[0], "http2") && !strings.Contains(got[0], "HTTP/2.0") {
			t.Errorf("curl %v:\nwaitron:\n%s\nnet/http:\n%s", args, got[0], got[1])
		}
	}
}

// TestTLSKeyUpdate: a TLS 1.3 client's KeyUpdate that asks for the
// server's (openssl s_client's K) is answered — crypto/tls writes it while
// the loop reads, outside any response — and the response after it is
// sealed with the new keys, on waitron as on net/http.
func TestTLSKeyUpdate(t *testing.T) {
	openssl := testutil.RequireTool(t, "openssl")
	certs := testutil.NewCerts(t)
	srvs, _ := tlsServers(t, http.HandlerFunc(tlsHello), certs, false)
	for _, s := range srvs {
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		cmd := exec.CommandContext(ctx, openssl, "s_client", "-tls1_3", "-crlf", "-connect", s.addr, "-CAfile", certs.CAFile)
		in, _ := cmd.StdinPipe()
		out, w := io.Pipe() // s_client says KEYUPDATE on standard error, the rest on standard output
		cmd.Stdout, cmd.Stderr = w, w
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { _ = cmd.Wait(); w.Close() }()
		lines := bufio.NewScanner(out)
		await := func(prefix string) bool {
			for lines.Scan() {
				if strings.HasPrefix(lines.Text(), prefix) {
					return true
				}
			}
			return false
		}
		ok := await("New, TLSv1.3") // the session's summary: the handshake is done
		_, _ = io.WriteString(in, "K\n")
		ok = ok && await("KEYUPDATE")
		_, _ = io.WriteString(in, "GET /after-update HTTP/1.1\nHost: x\nConnection: close\n\n")
		ok = ok && await("GET /after-update HTTP/1.1 tls=true")
		in.Close()
		_, _ = io.Copy(io.Discard, out) // until s_client has exited
		cancel()
		if !ok {
			t.Errorf("%s: no answer after the KeyUpdate", s.name)
		}
	}
}
