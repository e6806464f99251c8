package engine_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/waitron/waitron/internal/engine"
	"github.com/waitron/waitron/internal/testutil"
)

// tlsEcho answers with what it saw of the request and its TLS state; /big
// sends 4 MiB in 64 KiB writes; /hijack takes the connection and echoes a
// line.
func tlsEcho(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/big":
		chunk := bytes.Repeat([]byte("0123456789abcdef"), 4096)
		for range 64 {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
		return
	case "/hijack":
		w.Header().Set("Connection", "Upgrade")
		w.Header().Set("Upgrade", "echo")
		w.WriteHeader(http.StatusSwitchingProtocols)
		nc, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer nc.Close()
		_ = nc.SetDeadline(time.Now().Add(ioTimeout))
		line, err := brw.ReadString('\n')
		if err != nil {
			return
		}
		_, _ = fmt.Fprintf(nc, "echo: %s", line)
		return
	}
	body, _ := io.ReadAll(r.Body)
	state := "none"
	if st := r.TLS; st != nil {
		state = fmt.Sprintf("%s alpn=%q complete=%v peers=%d", tls.VersionName(st.Version), st.NegotiatedProtocol,
			st.HandshakeComplete, len(st.PeerCertificates))
	}
	fmt.Fprintf(w, "%s %s tls=[%s] body=%d sha=%x", r.Method, r.URL.Path, state, len(body), sha256.Sum256(body))
}

// tlsPeer is net/http serving h over TLS with the same certificate.
func tlsPeer(t *testing.T, certs *testutil.Certs, h http.Handler, mutual bool) string {
	t.Helper()
	ts := httptest.NewUnstartedServer(h)
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{certs.Server}}
	if mutual {
		ts.TLS.ClientCAs, ts.TLS.ClientAuth = certs.Pool, tls.RequireAndVerifyClientCert
	}
	ts.StartTLS()
	t.Cleanup(ts.Close)
	return ts.Listener.Addr().String()
}

// startTLS serves h with waitron on a plain and a TLS listener; it returns
// the server and the TLS address.
func startTLS(t *testing.T, h http.Handler, certs *testutil.Certs, set ...string) (*testServer, string) {
	t.Helper()
	set = append([]string{"tls_listen", "127.0.0.1:0", "certfile", certs.CertFile, "keyfile", certs.KeyFile}, set...)
	s := start(t, h, set...)
	return s, s.Addrs()[1].String()
}

// h1Client is an HTTP/1.1 client trusting the test CA.
func h1Client(certs *testutil.Certs, cert *tls.Certificate) *http.Client {
	cfg := certs.ClientConfig()
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Timeout: ioTimeout, Transport: &http.Transport{TLSClientConfig: cfg,
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}}
}

func get(t *testing.T, c *http.Client, method, url string, body []byte) string {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, url, err)
	}
	if len(b) > 1<<10 {
		return fmt.Sprintf("%d %s len=%d sha=%x", resp.StatusCode, resp.Proto, len(b), sha256.Sum256(b))
	}
	return fmt.Sprintf("%d %s %s", resp.StatusCode, resp.Proto, b)
}

// TestTLSLikeNetHTTP: Go's client over TLS gets from waitron what it gets
// from net/http with the same certificate: r.TLS as net/http sets it,
// bodies of many records each way, keep-alive.
func TestTLSLikeNetHTTP(t *testing.T) {
	certs := testutil.NewCerts(t)
	_, addr := startTLS(t, http.HandlerFunc(tlsEcho), certs)
	peer := tlsPeer(t, certs, http.HandlerFunc(tlsEcho), false)
	big := bytes.Repeat([]byte("waitron "), 1<<17) // 1 MiB
	for _, tc := range []struct {
		method, path string
		body         []byte
	}{{"GET", "/", nil}, {"POST", "/echo", big}, {"GET", "/big", nil}, {"POST", "/small", []byte("hello")}} {
		var got [2]string
		for i, a := range []string{addr, peer} {
			c := h1Client(certs, nil)
			for range 3 { // keep-alive: the same connection again
				got[i] = get(t, c, tc.method, "https://"+a+tc.path, tc.body)
			}
			c.CloseIdleConnections()
		}
		if got[0] != got[1] {
			t.Errorf("%s %s:\nwaitron:  %s\nnet/http: %s", tc.method, tc.path, got[0], got[1])
		}
		if !strings.HasPrefix(got[0], "200 HTTP/1.1") {
			t.Errorf("%s %s: %s", tc.method, tc.path, got[0])
		}
	}
}

// TestTLSPipelinedAndHijacked: three requests in one TLS write are
// answered in order, and a hijack hands the handler the TLS connection
// with the bytes sent behind the head already decrypted: as net/http.
func TestTLSPipelinedAndHijacked(t *testing.T) {
	certs := testutil.NewCerts(t)
	_, addr := startTLS(t, http.HandlerFunc(tlsEcho), certs)
	peer := tlsPeer(t, certs, http.HandlerFunc(tlsEcho), false)
	exchange := func(a, raw string, responses int) string {
		c, err := tls.Dial("tcp", a, certs.ClientConfig())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(ioTimeout))
		if _, err := io.WriteString(c, raw); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		var out []string
		for range responses {
			resp, body := testutil.ReadResponse(t, br, "GET")
			out = append(out, fmt.Sprintf("%d %s", resp.StatusCode, body))
		}
		rest, _ := io.ReadAll(br)
		return strings.Join(out, "\n") + "\n" + string(rest)
	}
	pipelined := strings.Repeat("GET /p HTTP/1.1\r\nHost: x\r\n\r\n", 2) + "GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
	hijack := "GET /hijack HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nhello\n"
	for _, tc := range []struct {
		name, raw string
		n         int
	}{{"pipelined", pipelined, 3}, {"hijack", hijack, 1}} {
		w, n := exchange(addr, tc.raw, tc.n), exchange(peer, tc.raw, tc.n)
		if w != n {
			t.Errorf("%s:\nwaitron:\n%s\nnet/http:\n%s", tc.name, w, n)
		}
	}
}

// TestTLSClientCertificates: under client_ca a client without a
// certificate is refused in the handshake (counted as tls_handshake) and
// one with a certificate the CA signed is served, its certificate in
// r.TLS: as net/http with RequireAndVerifyClientCert.
func TestTLSClientCertificates(t *testing.T) {
	certs := testutil.NewCerts(t)
	s, addr := startTLS(t, http.HandlerFunc(tlsEcho), certs, "client_ca", certs.CAFile)
	peer := tlsPeer(t, certs, http.HandlerFunc(tlsEcho), true)
	var got [2]string
	for i, a := range []string{addr, peer} {
		got[i] = get(t, h1Client(certs, &certs.Client), "GET", "https://"+a+"/", nil)
		if _, err := h1Client(certs, nil).Get("https://" + a + "/"); err == nil {
			t.Errorf("%s: a client without a certificate was served", a)
		}
	}
	if got[0] != got[1] || !strings.Contains(got[0], "peers=1") {
		t.Errorf("waitron:  %s\nnet/http: %s", got[0], got[1])
	}
	testutil.WaitFor(t, "the refused handshake counted", func() bool {
		return s.Stats().Closed[engine.CloseTLSHandshake] >= 1
	})
}

// TestTLSPlainRequestToTLSPort: a plain HTTP request on the TLS port gets
// net/http's answer, a 400 in the clear, and the connection closes.
func TestTLSPlainRequestToTLSPort(t *testing.T) {
	certs := testutil.NewCerts(t)
	s, addr := startTLS(t, http.HandlerFunc(tlsEcho), certs)
	peer := tlsPeer(t, certs, http.HandlerFunc(tlsEcho), false)
	var got [2]string
	for i, a := range []string{addr, peer} {
		c, err := net.Dial("tcp", a)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(ioTimeout))
		_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		b, _ := io.ReadAll(c)
		c.Close()
		got[i] = string(b)
	}
	if got[0] != got[1] || !strings.HasPrefix(got[0], "HTTP/1.0 400 Bad Request") {
		t.Errorf("waitron:  %q\nnet/http: %q", got[0], got[1])
	}
	if n := s.Stats().Closed[engine.CloseTLSHandshake]; n != 1 {
		t.Errorf("tls_handshake closes: %d, want 1", n)
	}
}

// TestTLSStalledHandshakes: clients that open TLS connections and send
// nothing take the handshake slots, not the plain listener's service, and
// are closed at tls_handshake_timeout with that reason.
func TestTLSStalledHandshakes(t *testing.T) {
	certs := testutil.NewCerts(t)
	s, addr := startTLS(t, http.HandlerFunc(tlsEcho), certs, "tls_handshake_limit", "2", "tls_handshake_timeout", "1")
	var stalled []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		stalled = append(stalled, c)
	}
	if got := get(t, &http.Client{Timeout: ioTimeout}, "GET", "http://"+s.addr+"/", nil); !strings.HasPrefix(got, "200") {
		t.Fatalf("plain request while handshakes stall: %s", got)
	}
	for _, c := range stalled {
		_ = c.SetReadDeadline(time.Now().Add(ioTimeout))
		if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil {
			t.Fatalf("a stalled handshake read %d bytes, err %v; want a close", n, err)
		}
	}
	testutil.WaitFor(t, "the stalled handshakes counted", func() bool {
		return s.Stats().Closed[engine.CloseTLSHandshakeTimeout] == 3
	})
	if got := get(t, h1Client(certs, nil), "GET", "https://"+addr+"/", nil); !strings.HasPrefix(got, "200") {
		t.Fatalf("TLS request after the stalls: %s", got)
	}
}

// TestTLSCloseNotify: a client that sends close_notify after its request
// still gets the response, then the close (counted as tls_close_notify),
// also when a record follows the close_notify.
func TestTLSCloseNotify(t *testing.T) {
	certs := testutil.NewCerts(t)
	s, addr := startTLS(t, http.HandlerFunc(tlsEcho), certs)
	c, err := tls.Dial("tcp", addr, certs.ClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(ioTimeout))
	_, _ = io.WriteString(c, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, body := testutil.ReadResponse(t, br, "GET")
	if resp.StatusCode != 200 || !strings.HasPrefix(body, "GET /x tls=[TLS 1.3") {
		t.Fatalf("response: %d %q", resp.StatusCode, body)
	}
	if rest, err := io.ReadAll(br); err != nil || len(rest) > 0 {
		t.Fatalf("after the response: %q, %v; want the close", rest, err)
	}
	testutil.WaitFor(t, "the close counted", func() bool {
		return s.Stats().Closed[engine.CloseTLSCloseNotify] == 1
	})

	// A record after close_notify, with a request in flight: the response
	// still leaves, the record is not read, and the close is the same.
	c2, err := tls.Dial("tcp", addr, certs.ClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	_ = c2.SetDeadline(time.Now().Add(ioTimeout))
	_, _ = io.WriteString(c2, "GET /after HTTP/1.1\r\nHost: x\r\n\r\n")
	_ = c2.CloseWrite()
	_, _ = c2.NetConn().Write(append([]byte{23, 3, 3, 0, 30}, bytes.Repeat([]byte{1}, 30)...))
	resp, body = testutil.ReadResponse(t, bufio.NewReader(c2), "GET")
	if resp.StatusCode != 200 || !strings.HasPrefix(body, "GET /after") {
		t.Fatalf("response before a record after close_notify: %d %q", resp.StatusCode, body)
	}
	testutil.WaitFor(t, "the second close counted", func() bool {
		st := s.Stats()
		return st.Closed[engine.CloseTLSCloseNotify] == 2 && st.Closed[engine.CloseTLSError] == 0
	})
}

// TestTLSFasthttpHandler: a fasthttp handler on a TLS connection sees
// what fasthttp's own server over TLS shows it: IsTLS, the connection
// state, the https scheme.
func TestTLSFasthttpHandler(t *testing.T) {
	certs := testutil.NewCerts(t)
	h := func(ctx *fasthttp.RequestCtx) {
		st := ctx.TLSConnectionState()
		fmt.Fprintf(ctx, "tls=%v scheme=%s uri=%s", ctx.IsTLS(), ctx.URI().Scheme(), ctx.URI().FullURI())
		if st != nil {
			fmt.Fprintf(ctx, " version=%s complete=%v", tls.VersionName(st.Version), st.HandshakeComplete)
		}
	}
	s := startFast(t, h, "tls_listen", "127.0.0.1:0", "certfile", certs.CertFile, "keyfile", certs.KeyFile)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fs := &fasthttp.Server{Handler: h}
	go fs.ServeTLS(ln, certs.CertFile, certs.KeyFile)
	t.Cleanup(func() { fs.Shutdown() })
	c := h1Client(certs, nil)
	w := get(t, c, "GET", "https://"+s.Addrs()[1].String()+"/p?q=1", nil)
	n := get(t, c, "GET", "https://"+ln.Addr().String()+"/p?q=1", nil)
	w = strings.ReplaceAll(w, s.Addrs()[1].String(), "ADDR")
	n = strings.ReplaceAll(n, ln.Addr().String(), "ADDR")
	if w != n || !strings.Contains(w, "tls=true scheme=https") {
		t.Errorf("waitron:  %s\nfasthttp: %s", w, n)
	}
	if got := get(t, c, "GET", "http://"+s.addr+"/p", nil); !strings.Contains(got, "tls=false scheme=http ") {
		t.Errorf("plain: %s", got)
	}
}

// TestTLSReload: a renewed certificate is served to new handshakes once
// the files change (the tick notices) or ReloadTLS is called; an open
// connection keeps working; a pair that does not load leaves the served
// one in place and says why.
func TestTLSReload(t *testing.T) {
	certs := testutil.NewCerts(t)
	s, addr := startTLS(t, http.HandlerFunc(tlsEcho), certs)
	served := func(pool *testutil.Certs) error {
		c, err := tls.Dial("tcp", addr, pool.ClientConfig())
		if err == nil {
			c.Close()
		}
		return err
	}
	old, err := tls.Dial("tcp", addr, certs.ClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	renewed := testutil.NewCerts(t) // another CA: a client trusting only it tells the pairs apart
	replace := func(from, to string) {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		tmp := to + ".new"
		if err := os.WriteFile(tmp, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, to); err != nil {
			t.Fatal(err)
		}
	}
	replace(renewed.CertFile, certs.CertFile)
	replace(renewed.KeyFile, certs.KeyFile)
	testutil.WaitFor(t, "the renewed certificate served", func() bool { return served(renewed) == nil })
	if err := served(certs); err == nil {
		t.Error("the old certificate is still served")
	}
	_ = old.SetDeadline(time.Now().Add(ioTimeout))
	_, _ = io.WriteString(old, "GET /still HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, body := testutil.ReadResponse(t, bufio.NewReader(old), "GET"); resp.StatusCode != 200 || !strings.HasPrefix(body, "GET /still") {
		t.Errorf("the connection opened before the reload: %d %q", resp.StatusCode, body)
	}
	if err := os.WriteFile(certs.KeyFile, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.ReloadTLS(); err == nil {
		t.Error("ReloadTLS with a broken key file: no error")
	}
	if err := served(renewed); err != nil {
		t.Errorf("after a failed reload: %v, want the renewed pair still served", err)
	}
	if !strings.Contains(s.logs.String(), "cannot reload the TLS certificate") {
		t.Error("the failed reload is not logged")
	}
}

// TestTLSProxyProtocol: on a TLS listener a PROXY protocol header before
// the handshake (HAProxy's send-proxy in front of TLS passthrough) names
// the client, over HTTP/1.1 and HTTP/2; from a peer not in trusted_proxy
// it closes the connection with the proxy_protocol reason; without one
// the handshake goes on as usual.
func TestTLSProxyProtocol(t *testing.T) {
	certs := testutil.NewCerts(t)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "%s %s", r.Proto, r.RemoteAddr) })
	s, addr := startTLS(t, h, certs, "proxy_protocol", "true", "trusted_proxy", "127.0.0.1")
	s.addr = s.Addrs()[0].String() // the plain listener, for h2c below
	dial := func(header string, protos ...string) (*tls.Conn, error) {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			return nil, err
		}
		_ = nc.SetDeadline(time.Now().Add(ioTimeout))
		if _, err := io.WriteString(nc, header); err != nil {
			return nil, err
		}
		cfg := certs.ClientConfig()
		cfg.NextProtos = protos
		tc := tls.Client(nc, cfg)
		if err := tc.Handshake(); err != nil {
			nc.Close()
			return nil, err
		}
		return tc, nil
	}
	for _, c := range []struct{ header, want string }{
		{"PROXY TCP4 192.0.2.7 127.0.0.1 4711 443\r\n", "HTTP/1.1 192.0.2.7:4711"},
		{"", "HTTP/1.1 127.0.0.1:"},
	} {
		tc, err := dial(c.header)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(tc, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		if _, body := testutil.ReadResponse(t, bufio.NewReader(tc), "GET"); !strings.HasPrefix(body, c.want) {
			t.Errorf("header %q: %q, want %q…", c.header, body, c.want)
		}
		tc.Close()
	}
	// HTTP/2 over TLS, after the header.
	tr := &http2Transport{dial: func() (net.Conn, error) { return dial("PROXY TCP4 192.0.2.8 127.0.0.1 4712 443\r\n", "h2") }}
	if got := tr.get(t); got != "HTTP/2.0 192.0.2.8:4712" {
		t.Errorf("HTTP/2 after a PROXY header: %q", got)
	}
	// h2c by prior knowledge on the plain listener, after the header.
	tr = &http2Transport{plain: true, dial: func() (net.Conn, error) {
		nc, err := net.Dial("tcp", s.addr)
		if err == nil {
			_, err = io.WriteString(nc, "PROXY TCP4 192.0.2.9 127.0.0.1 4713 80\r\n")
		}
		return nc, err
	}}
	if got := tr.get(t); got != "HTTP/2.0 192.0.2.9:4713" {
		t.Errorf("h2c after a PROXY header: %q", got)
	}
	untrusted, _ := startTLS(t, h, certs, "proxy_protocol", "true", "trusted_proxy", "192.0.2.1")
	nc, err := net.Dial("tcp", untrusted.Addrs()[1].String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(ioTimeout))
	_, _ = io.WriteString(nc, "PROXY TCP4 192.0.2.7 127.0.0.1 4711 443\r\n")
	if n, _ := nc.Read(make([]byte, 1)); n != 0 {
		t.Error("an untrusted PROXY header was answered")
	}
	testutil.WaitFor(t, "the refusal counted", func() bool { return untrusted.Stats().Closed[engine.CloseProxyProtocol] == 1 })
}

// http2Transport makes one HTTP/2 request over a connection dial gives:
// a TLS one, or a plain one for h2c by prior knowledge.
type http2Transport struct {
	dial  func() (net.Conn, error)
	plain bool
}

func (h *http2Transport) get(t *testing.T) string {
	t.Helper()
	p := new(http.Protocols)
	tr, url := &http.Transport{Protocols: p}, "https://localhost/"
	dial := func(context.Context, string, string) (net.Conn, error) { return h.dial() }
	if h.plain {
		p.SetUnencryptedHTTP2(true)
		tr.DialContext, url = dial, "http://localhost/"
	} else {
		p.SetHTTP2(true)
		tr.DialTLSContext = dial
	}
	c := &http.Client{Timeout: ioTimeout, Transport: tr}
	defer c.CloseIdleConnections()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestTLSHalfClose: a TLS client that sends its request and shuts down
// its sending side (TCP, no close_notify) still gets the whole response,
// a large one too, as from net/http.
func TestTLSHalfClose(t *testing.T) {
	certs := testutil.NewCerts(t)
	_, addr := startTLS(t, http.HandlerFunc(tlsEcho), certs)
	peer := tlsPeer(t, certs, http.HandlerFunc(tlsEcho), false)
	for _, path := range []string{"/small", "/big"} {
		var got [2]string
		for i, a := range []string{addr, peer} {
			c, err := tls.Dial("tcp", a, certs.ClientConfig())
			if err != nil {
				t.Fatal(err)
			}
			_ = c.SetDeadline(time.Now().Add(ioTimeout))
			_, _ = io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n")
			if err := c.NetConn().(*net.TCPConn).CloseWrite(); err != nil {
				t.Fatal(err)
			}
			resp, body := testutil.ReadResponse(t, bufio.NewReader(c), "GET")
			got[i] = fmt.Sprintf("%d len=%d sha=%x", resp.StatusCode, len(body), sha256.Sum256([]byte(body)))
			c.Close()
		}
		if got[0] != got[1] {
			t.Errorf("%s: waitron %s, net/http %s", path, got[0], got[1])
		}
	}
}
