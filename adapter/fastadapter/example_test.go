package fastadapter_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/waitron/waitron"
	"github.com/waitron/waitron/adapter/fastadapter"
)

// A fasthttp handler (here a bare one; a Fiber app's app.Handler() is
// served the same way) on waitron's engine.
func ExampleNewServer() {
	handler := func(ctx *fasthttp.RequestCtx) {
		fmt.Fprintf(ctx, "hello, %s\n", ctx.QueryArgs().Peek("name"))
	}

	opts := waitron.DefaultOptions()
	opts.Listen = []string{"127.0.0.1:0"}
	srv, err := fastadapter.NewServer(handler, opts, nil)
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
