// A program of net/http handlers served by waitron, as a user writes it:
// the link test (TestNetHTTPProgramLinksNoFasthttp) builds it and looks at
// what it links.
package main

import (
	"errors"
	"fmt"
	"log"
	"net/http"
	"time"

	"github.com/waitron/waitron"
)

func main() {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "hello") })
	srv := &http.Server{Addr: ":8080", Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	ws, err := waitron.FromHTTPServer(srv, nil)
	if err != nil {
		log.Fatal(err)
	}
	if err := ws.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}
