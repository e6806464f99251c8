package tests

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/waitron/waitron"
)

type connKey struct{}

// TestChiServiceWithConnContext: a chi service as users write it (route
// parameters, chi's middleware, a ConnContext that tags each connection),
// run as its *http.Server with net/http and through waitron.FromHTTPServer,
// answers the same, and its graceful shutdown ends both the same way.
func TestChiServiceWithConnContext(t *testing.T) {
	for _, name := range []string{"net/http", "waitron"} {
		t.Run(name, func(t *testing.T) {
			r := chi.NewRouter()
			r.Use(middleware.RequestID, middleware.Recoverer)
			r.Get("/users/{id}", func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprintf(w, "user %s on %v, request id set: %v", chi.URLParam(r, "id"),
					r.Context().Value(connKey{}), middleware.GetReqID(r.Context()) != "")
			})
			r.Get("/panic", func(http.ResponseWriter, *http.Request) { panic("on purpose") })
			listening := make(chan string, 1)
			srv := &http.Server{
				Handler:           r,
				ReadHeaderTimeout: 5 * time.Second,
				ConnContext: func(ctx context.Context, c net.Conn) context.Context {
					return context.WithValue(ctx, connKey{}, "tagged")
				},
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			listening <- ln.Addr().String()
			var serve func() error
			var shutdown func(context.Context) error
			if name == "waitron" {
				ws, err := waitron.FromHTTPServer(srv, nil)
				if err != nil {
					t.Fatal(err)
				}
				serve, shutdown = func() error { return ws.Serve(ln) }, ws.Shutdown
			} else {
				serve, shutdown = func() error { return srv.Serve(ln) }, srv.Shutdown
			}
			served := make(chan error, 1)
			go func() { served <- serve() }()
			addr := <-listening
			client := &http.Client{Timeout: ioTimeout}
			resp, err := client.Get("http://" + addr + "/users/42")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if want := "user 42 on tagged, request id set: true"; string(b) != want {
				t.Errorf("got %q, want %q", b, want)
			}
			resp, err = client.Get("http://" + addr + "/panic") // chi's Recoverer answers 500
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusInternalServerError {
				t.Errorf("/panic: %d, want 500 from chi's Recoverer", resp.StatusCode)
			}
			ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
			defer cancel()
			if err := shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			if err := recv(t, served); !errors.Is(err, http.ErrServerClosed) {
				t.Fatalf("serving returned %v, want http.ErrServerClosed", err)
			}
		})
	}
}
