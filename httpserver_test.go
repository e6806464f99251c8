package waitron_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/waitron/waitron"
	"github.com/waitron/waitron/internal/testutil"
)

type ctxKey string

// TestListenAndServeLikeNetHTTP: a typical http.Server program, run with
// srv.ListenAndServe() and with waitron.ListenAndServe(srv): its handler
// finds srv under http.ServerContextKey and ConnContext's value in its
// context, BaseContext gets the listener, ErrorLog gets the panic's line,
// and srv.Shutdown ends the serving call with http.ErrServerClosed.
func TestListenAndServeLikeNetHTTP(t *testing.T) {
	for _, name := range []string{"net/http", "waitron"} {
		t.Run(name, func(t *testing.T) {
			mux := http.NewServeMux()
			var srv *http.Server
			mux.HandleFunc("/ctx", func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprintf(w, "server=%v conn=%v", r.Context().Value(http.ServerContextKey) == srv,
					r.Context().Value(ctxKey("conn")))
			})
			mux.HandleFunc("/panic", func(http.ResponseWriter, *http.Request) { panic("on purpose") })
			listening := make(chan net.Addr, 1)
			errLog := &testutil.SyncBuffer{}
			srv = &http.Server{
				Addr:              "127.0.0.1:0",
				Handler:           mux,
				ReadHeaderTimeout: 5 * time.Second,
				IdleTimeout:       30 * time.Second,
				MaxHeaderBytes:    64 << 10,
				ErrorLog:          log.New(errLog, "", 0),
				BaseContext: func(ln net.Listener) context.Context {
					listening <- ln.Addr()
					return context.Background()
				},
				ConnContext: func(ctx context.Context, c net.Conn) context.Context {
					return context.WithValue(ctx, ctxKey("conn"), "set")
				},
			}
			served := make(chan error, 1)
			go func() {
				if name == "waitron" {
					served <- waitron.ListenAndServe(srv)
				} else {
					served <- srv.ListenAndServe()
				}
			}()
			var addr net.Addr
			select {
			case addr = <-listening:
			case err := <-served:
				t.Fatalf("serving failed: %v", err)
			case <-time.After(10 * time.Second):
				t.Fatal("not listening")
			}
			client := &http.Client{Timeout: 10 * time.Second}
			resp, err := client.Get("http://" + addr.String() + "/ctx")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) != "server=true conn=set" {
				t.Errorf("/ctx: %q", b)
			}
			if resp, err := client.Get("http://" + addr.String() + "/panic"); err == nil {
				resp.Body.Close()
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				t.Fatalf("srv.Shutdown: %v", err)
			}
			select {
			case err := <-served:
				if !errors.Is(err, http.ErrServerClosed) {
					t.Fatalf("serving returned %v, want http.ErrServerClosed", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("serving did not return after srv.Shutdown")
			}
			if !strings.Contains(errLog.String(), "panic") {
				t.Errorf("ErrorLog has no line about the panic:\n%s", errLog)
			}
		})
	}
}

// TestFromHTTPServerRefuses: a field waitron cannot honour, or one that
// the options set too, is an error naming it, never ignored.
func TestFromHTTPServerRefuses(t *testing.T) {
	withListen := waitron.DefaultOptions()
	if err := withListen.Set("listen", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	withHeader := waitron.DefaultOptions()
	if err := withHeader.Set("request_header_timeout", "7"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		srv  *http.Server
		opts *waitron.Options
		want string
	}{
		{&http.Server{Protocols: protocols(false, true)}, nil, "Protocols"},
		{&http.Server{HTTP2: &http.HTTP2Config{PingTimeout: time.Second}}, nil, "HTTP2"},
		{&http.Server{TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){"x": nil}}, nil, "TLSNextProto"},
		{&http.Server{TLSConfig: &tls.Config{}}, nil, "TLSConfig"},
		{&http.Server{ReadHeaderTimeout: 500 * time.Millisecond}, nil, "ReadHeaderTimeout"},
		{&http.Server{IdleTimeout: 1500 * time.Millisecond}, nil, "IdleTimeout"},
		{&http.Server{Addr: "127.0.0.1:8081"}, &withListen, "Addr"},
		{&http.Server{ReadHeaderTimeout: 5 * time.Second}, &withHeader, "ReadHeaderTimeout"},
		{&http.Server{Addr: "no-port"}, nil, "Addr"},
		{&http.Server{WriteTimeout: -time.Second}, nil, "WriteTimeout"},
	} {
		_, err := waitron.FromHTTPServer(c.srv, c.opts)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error naming it", c.want, err)
		}
	}
	for range 2 { // and the options given are left as they were
		if _, err := waitron.FromHTTPServer(&http.Server{Protocols: protocols(true, false)}, &withListen); err != nil {
			t.Errorf("Protocols with HTTP/1 only: %v", err)
		}
	}
	if withListen.IsSet("http2") || withListen.IsSet("h2c") {
		t.Error("FromHTTPServer changed the options it was given")
	}
}

// TestFromHTTPServerProtocols: as net/http, h2c by prior knowledge is
// served only when Protocols asks for it; HTTP2.MaxConcurrentStreams is
// taken.
func TestFromHTTPServerProtocols(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.Proto) })
	h2cOnly := new(http.Protocols)
	h2cOnly.SetUnencryptedHTTP2(true)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Protocols: h2cOnly}}
	withH2C := protocols(true, true)
	withH2C.SetUnencryptedHTTP2(true)
	for _, c := range []struct {
		p    *http.Protocols
		want string
	}{{nil, ""}, {withH2C, "HTTP/2.0"}} {
		srv := &http.Server{Handler: h, Protocols: c.p, HTTP2: &http.HTTP2Config{MaxConcurrentStreams: 10}}
		opts := waitron.DefaultOptions()
		if err := opts.Set("listen", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		s, err := waitron.FromHTTPServer(srv, &opts)
		if err != nil {
			t.Fatal(err)
		}
		served := make(chan error, 1)
		go func() { served <- s.ListenAndServe() }()
		<-s.Ready()
		got := ""
		if resp, err := client.Get("http://" + s.Addrs()[0].String() + "/"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			got = string(b)
		}
		client.CloseIdleConnections()
		if got != c.want {
			t.Errorf("Protocols %v: an h2c client got %q, want %q", c.p, got, c.want)
		}
		if err := s.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		<-served
	}
}

func protocols(http1, http2 bool) *http.Protocols {
	var p http.Protocols
	p.SetHTTP1(http1)
	p.SetHTTP2(http2)
	return &p
}

// serveBoth runs f against srv served by net/http (srv.Serve) and by
// waitron (FromHTTPServer, then Serve), each on a listener of its own,
// stopping each when f returns.
func serveBoth(t *testing.T, mk func() *http.Server, f func(t *testing.T, addr string)) {
	for _, name := range []string{"net/http", "waitron"} {
		t.Run(name, func(t *testing.T) {
			srv := mk()
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			served := make(chan error, 1)
			closeFn := srv.Close
			if name == "waitron" {
				ws, err := waitron.FromHTTPServer(srv, nil)
				if err != nil {
					t.Fatal(err)
				}
				go func() { served <- ws.Serve(ln) }()
				closeFn = ws.Close
			} else {
				go func() { served <- srv.Serve(ln) }()
			}
			f(t, ln.Addr().String())
			closeFn()
			if err := <-served; !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("serving returned %v", err)
			}
		})
	}
}

// rawRoundTrip sends raw on a new connection and returns what comes back
// until the server closes it.
func rawRoundTrip(t *testing.T, addr, raw string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, raw)
	b, _ := io.ReadAll(c)
	return string(b)
}

// TestWriteTimeoutLikeNetHTTP: with a WriteTimeout already past when the
// handler writes, its response never reaches the client, which sees the
// connection close; the handler's write fails on waitron (net/http's
// fails at its flush). As net/http.
func TestWriteTimeoutLikeNetHTTP(t *testing.T) {
	mk := func() *http.Server {
		return &http.Server{WriteTimeout: time.Nanosecond, ErrorLog: log.New(io.Discard, "", 0),
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "late") })}
	}
	serveBoth(t, mk, func(t *testing.T, addr string) {
		if got := rawRoundTrip(t, addr, "GET / HTTP/1.1\r\nHost: a\r\n\r\n"); got != "" {
			t.Errorf("a response past WriteTimeout reached the client: %q", got)
		}
	})
}

// TestDisableGeneralOptionsHandlerLikeNetHTTP: "OPTIONS *" is answered by
// the server (200, empty), or, with DisableGeneralOptionsHandler, given to
// the handler. As net/http.
func TestDisableGeneralOptionsHandlerLikeNetHTTP(t *testing.T) {
	for _, disable := range []bool{false, true} {
		mk := func() *http.Server {
			return &http.Server{DisableGeneralOptionsHandler: disable, ErrorLog: log.New(io.Discard, "", 0),
				Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.WriteHeader(http.StatusTeapot)
					io.WriteString(w, "handler saw "+r.RequestURI)
				})}
		}
		t.Run(fmt.Sprint("disable=", disable), func(t *testing.T) {
			serveBoth(t, mk, func(t *testing.T, addr string) {
				got := rawRoundTrip(t, addr, "OPTIONS * HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
				byHandler := strings.HasPrefix(got, "HTTP/1.1 418 ") && strings.HasSuffix(got, "handler saw *")
				byServer := strings.HasPrefix(got, "HTTP/1.1 200 ") && strings.Contains(got, "Content-Length: 0\r\n")
				if disable && !byHandler || !disable && !byServer {
					t.Errorf("OPTIONS * with DisableGeneralOptionsHandler=%v: %q", disable, got)
				}
			})
		})
	}
}

// TestShutdownWaitsLikeNetHTTP: the graceful-shutdown idiom — serve in a
// goroutine, srv.Shutdown(ctx) on the signal, then exit — answers the
// request in flight in full before srv.Shutdown returns, with
// srv.ListenAndServe() and with waitron.ListenAndServe(srv); the handler
// finishes only after the shutdown has begun.
func TestShutdownWaitsLikeNetHTTP(t *testing.T) {
	for _, name := range []string{"net/http", "waitron"} {
		t.Run(name, func(t *testing.T) {
			entered, shuttingDown := make(chan struct{}), make(chan struct{})
			var finished atomic.Bool
			listening := make(chan net.Addr, 2)
			srv := &http.Server{
				Addr: "127.0.0.1:0",
				Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					close(entered)
					<-shuttingDown
					io.WriteString(w, strings.Repeat("x", 256<<10))
					finished.Store(true)
				}),
				BaseContext: func(ln net.Listener) context.Context {
					listening <- ln.Addr()
					return context.Background()
				},
			}
			srv.RegisterOnShutdown(func() { close(shuttingDown) })
			served := make(chan error, 1)
			go func() {
				if name == "waitron" {
					served <- waitron.ListenAndServe(srv)
				} else {
					served <- srv.ListenAndServe()
				}
			}()
			addr := (<-listening).String()
			got := make(chan string, 1)
			go func() {
				resp, err := (&http.Client{Timeout: 20 * time.Second}).Get("http://" + addr + "/")
				if err != nil {
					got <- err.Error()
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				got <- fmt.Sprintf("%d %d %v", resp.StatusCode, len(b), err)
			}()
			<-entered
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				t.Fatalf("srv.Shutdown: %v", err)
			}
			if !finished.Load() {
				t.Error("srv.Shutdown returned before the handler in flight finished")
			}
			if g, want := <-got, fmt.Sprintf("200 %d <nil>", 256<<10); g != want {
				t.Errorf("the request in flight got %q, want %q", g, want)
			}
			if err := <-served; !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("serving returned %v, want http.ErrServerClosed", err)
			}
		})
	}
}

// TestListenAndServeTLSLikeNetHTTP: the one-line swap for
// srv.ListenAndServeTLS: files, or a TLSConfig with GetCertificate and no
// files, serve HTTPS on Addr; srv.Shutdown ends it with
// http.ErrServerClosed; the same program on net/http behaves the same.
func TestListenAndServeTLSLikeNetHTTP(t *testing.T) {
	certs := testutil.NewCerts(t)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "tls=%v host=%s", r.TLS != nil, r.TLS.ServerName)
	})
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: certs.ClientConfig(),
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}}
	for _, viaConfig := range []bool{false, true} {
		var got [2]string
		for i, serve := range []func(srv *http.Server, cert, key string) error{
			func(srv *http.Server, cert, key string) error { return waitron.ListenAndServeTLS(srv, cert, key) },
			func(srv *http.Server, cert, key string) error { return srv.ListenAndServeTLS(cert, key) },
		} {
			srv := &http.Server{Addr: testutil.FreeAddr(t), Handler: h}
			cert, key := certs.CertFile, certs.KeyFile
			if viaConfig {
				srv.TLSConfig = &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &certs.Server, nil }}
				cert, key = "", ""
			}
			served := make(chan error, 1)
			go func() { served <- serve(srv, cert, key) }()
			var resp *http.Response
			testutil.WaitFor(t, "the server listening", func() bool {
				var err error
				resp, err = client.Get("https://" + srv.Addr + "/")
				return err == nil
			})
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			got[i] = string(b)
			client.CloseIdleConnections()
			if err := srv.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			if err := <-served; !errors.Is(err, http.ErrServerClosed) {
				t.Fatalf("served: %v, want http.ErrServerClosed", err)
			}
		}
		if got[0] != got[1] || got[0] != "tls=true host=localhost" {
			t.Errorf("TLSConfig %v: waitron %q, net/http %q", viaConfig, got[0], got[1])
		}
	}
}

// TestServeTLSLikeNetHTTP: Server.ServeTLS on a listener the program made
// serves HTTPS and HTTP/2 by ALPN with the given pair, as net/http's
// ServeTLS does.
func TestServeTLSLikeNetHTTP(t *testing.T) {
	certs := testutil.NewCerts(t)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s tls=%v", r.Proto, r.TLS != nil)
	})
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: certs.ClientConfig(), ForceAttemptHTTP2: true}}
	var got [2]string
	for i := range got {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: h}
		var serve func() error
		var stop func() error
		if i == 0 {
			ws, err := waitron.FromHTTPServer(srv, nil)
			if err != nil {
				t.Fatal(err)
			}
			serve = func() error { return ws.ServeTLS(ln, certs.CertFile, certs.KeyFile) }
			stop = func() error { return ws.Shutdown(context.Background()) }
		} else {
			serve = func() error { return srv.ServeTLS(ln, certs.CertFile, certs.KeyFile) }
			stop = func() error { return srv.Shutdown(context.Background()) }
		}
		served := make(chan error, 1)
		go func() { served <- serve() }()
		resp, err := client.Get("https://" + ln.Addr().String() + "/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got[i] = string(b)
		client.CloseIdleConnections()
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Fatalf("served: %v", err)
		}
	}
	if got[0] != got[1] || got[0] != "HTTP/2.0 tls=true" {
		t.Errorf("waitron %q, net/http %q", got[0], got[1])
	}
}

// TestHTTP2ConnHooks: over HTTP/2 (TLS, and h2c) ConnContext's value
// reaches the handler and ConnState sees every connection from StateNew
// to an end (StateClosed, or StateHijacked for the HTTP/1 connection an
// h2c one was handed over from), as net/http's do.
func TestHTTP2ConnHooks(t *testing.T) {
	certs := testutil.NewCerts(t)
	var mu sync.Mutex
	states := map[net.Conn][]http.ConnState{}
	var infos []string // RequestInfo's scheme and port, per request
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			info, _ := waitron.RequestInfo(r)
			mu.Lock()
			infos = append(infos, info.Scheme+" "+info.ServerPort)
			mu.Unlock()
			fmt.Fprintf(w, "%s %v", r.Proto, r.Context().Value(ctxKey("conn")))
		}),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, ctxKey("conn"), "marked")
		},
		ConnState: func(c net.Conn, st http.ConnState) {
			mu.Lock()
			states[c] = append(states[c], st)
			mu.Unlock()
		},
		Protocols: protocols(true, true),
	}
	srv.Protocols.SetUnencryptedHTTP2(true)
	ws, err := waitron.FromHTTPServer(srv, nil)
	if err != nil {
		t.Fatal(err)
	}
	tlsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	plainLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ws2, err := waitron.FromHTTPServer(srv, nil)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 2)
	go func() { served <- ws.ServeTLS(tlsLn, certs.CertFile, certs.KeyFile) }()
	go func() { served <- ws2.Serve(plainLn) }()
	<-ws.Ready()
	<-ws2.Ready()
	p := new(http.Protocols)
	p.SetHTTP2(true)
	p.SetUnencryptedHTTP2(true)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: certs.ClientConfig(), Protocols: p}}
	for _, url := range []string{"https://" + tlsLn.Addr().String() + "/", "http://" + plainLn.Addr().String() + "/"} {
		resp, err := client.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "HTTP/2.0 marked" {
			t.Errorf("%s: %q", url, b)
		}
	}
	client.CloseIdleConnections()
	for _, s := range []*waitron.Server{ws, ws2} {
		if err := s.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		<-served
	}
	mu.Lock()
	defer mu.Unlock()
	port := func(ln net.Listener) string { return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port) }
	if want := []string{"https " + port(tlsLn), "http " + port(plainLn)}; !slices.Equal(infos, want) {
		t.Errorf("RequestInfo over HTTP/2: %q, want %q", infos, want)
	}
	if len(states) != 3 { // the TLS connection, and the h2c one before and after its hand-over
		t.Errorf("ConnState saw %d connections, want 3", len(states))
	}
	for c, seq := range states {
		last := seq[len(seq)-1]
		if seq[0] != http.StateNew || last != http.StateClosed && last != http.StateHijacked {
			t.Errorf("%v: states %v", c.RemoteAddr(), seq)
		}
	}
}
