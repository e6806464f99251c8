package waitron_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/waitron/waitron"
	"github.com/waitron/waitron/limits"
)

// A net/http program's *http.Server, served by waitron: the server is
// built as before, FromHTTPServer takes its fields (and waitress's
// defaults for the rest), and the lifecycle is net/http's.
func ExampleFromHTTPServer() {
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello, %s\n", r.URL.Query().Get("name"))
	})
	srv := &http.Server{Addr: "127.0.0.1:0", Handler: mux, ReadHeaderTimeout: 5 * time.Second}

	ws, err := waitron.FromHTTPServer(srv, nil)
	if err != nil {
		panic(err)
	}
	served := make(chan error, 1)
	go func() { served <- ws.ListenAndServe() }()
	<-ws.Ready()

	resp, err := http.Get("http://" + ws.Addrs()[0].String() + "/hello?name=gopher")
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Print(string(body))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws.Shutdown(ctx)
	fmt.Println(<-served)
	// Output:
	// hello, gopher
	// http: Server closed
}

func Example() {
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello, %s\n", r.URL.Query().Get("name"))
	})

	opts := limits.Default()
	opts.Listen = []string{"127.0.0.1:0"} // any free port
	opts.Threads = 8
	srv, err := waitron.NewServer(mux, opts, nil)
	if err != nil {
		panic(err)
	}
	go srv.ListenAndServe()
	<-srv.Ready()

	resp, err := http.Get("http://" + srv.Addrs()[0].String() + "/hello?name=gopher")
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Print(string(body))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv.Shutdown(ctx)
	// Output: hello, gopher
}
