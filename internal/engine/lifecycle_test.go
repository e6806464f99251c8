package engine_test

import (
	"context"
	"errors"
	"github.com/waitron/waitron/internal/testutil"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/waitron/waitron/internal/engine"
	"github.com/waitron/waitron/internal/targetapp"
	"github.com/waitron/waitron/limits"
)

func newServer(t *testing.T) *engine.Server {
	t.Helper()
	o := limits.Default()
	if err := o.Set("listen", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	srv, err := engine.New(targetapp.NewWith(testCaps), o, nil)
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

// Shutdown before Serve returns (it used to wait for Serve forever,
// ignoring its context); Serve then refuses to start, as net/http's does.
func TestShutdownBeforeServe(t *testing.T) {
	srv := newServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown before Serve: %v", err)
	}
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve after Shutdown: %v, want http.ErrServerClosed", err)
	}
	<-srv.Ready()
	if err := srv.ReadyErr(); !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("ReadyErr: %v", err)
	}
}

// A second Serve while the first runs returns an error at once, and Serve
// after Shutdown returns http.ErrServerClosed.
func TestServeTwiceAndAfterShutdown(t *testing.T) {
	s := start(t, nil)
	if err := s.ListenAndServe(); err == nil || errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("second Serve: %v, want an error saying it already serves", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve after Shutdown: %v, want http.ErrServerClosed", err)
	}
}

// Every close is counted under its named reason (Server.Stats).
func TestCloseReasonsCounted(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("/plaintext", targetapp.NewWith(testCaps))
	mux.HandleFunc("/hijack", func(w http.ResponseWriter, r *http.Request) {
		if nc, _, err := http.NewResponseController(w).Hijack(); err == nil {
			nc.Close()
		}
	})
	s := start(t, mux)
	get := "GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n"
	cases := []struct {
		want engine.CloseReason
		run  func(c net.Conn)
	}{
		{engine.CloseBadRequest, func(c net.Conn) { io.WriteString(c, "GARBAGE\r\n\r\n"); io.ReadAll(c) }},
		{engine.CloseRequested, func(c net.Conn) {
			io.WriteString(c, "GET /plaintext HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
			io.ReadAll(c)
		}},
		{engine.CloseClientClosed, func(c net.Conn) {
			io.WriteString(c, get)
			expectResponse(t, c, plaintextResp)
			c.Close()
		}},
		{engine.CloseClientReset, func(c net.Conn) {
			io.WriteString(c, get)
			expectResponse(t, c, plaintextResp)
			c.(*net.TCPConn).SetLinger(0)
			c.Close()
		}},
		{engine.CloseHijacked, func(c net.Conn) {
			io.WriteString(c, "GET /hijack HTTP/1.1\r\nHost: a\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n")
			io.ReadAll(c)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.want.String(), func(t *testing.T) {
			before := s.Stats().Closed
			tc.run(s.dial(t))
			testutil.WaitFor(t, "the close to be counted as "+tc.want.String(), func() bool {
				return s.Stats().Closed[tc.want] == before[tc.want]+1
			})
			for r, n := range s.Stats().Closed {
				if r != tc.want && n != before[r] {
					t.Errorf("also counted as %s", r)
				}
			}
		})
	}
}
