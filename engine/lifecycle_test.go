package engine_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/waitron/waitron/engine"
	"github.com/waitron/waitron/internal/targetapp"
	"github.com/waitron/waitron/limits"
)

func newServer(t *testing.T) *engine.Server {
	t.Helper()
	o := limits.Default()
	if err := o.Set("listen", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	srv, err := engine.New(targetapp.New(), o, nil)
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
	if err := srv.Serve(); !errors.Is(err, http.ErrServerClosed) {
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
	if err := s.Serve(); err == nil || errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("second Serve: %v, want an error saying it already serves", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(); !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve after Shutdown: %v, want http.ErrServerClosed", err)
	}
}
