// Command peer serves the waitron target app with another server, for
// benchmarks: net/http, a raw gnet server with fixed answers (the ceiling),
// or fasthttp (through fasthttpadaptor, since the
// handler is a net/http handler; -native serves /plaintext and /json with
// fasthttp's own API to show fasthttp at its best). With -app arena it
// serves the arena app instead: its net/http version on net/http, its
// fasthttp version on fasthttp.
package main

import (
	"flag"
	"log"
	"net/http"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"github.com/waitron/waitron/internal/arena"
	"github.com/waitron/waitron/internal/targetapp"
)

func main() {
	kind := flag.String("kind", "nethttp", "nethttp, fasthttp or raw (gnet with fixed answers: the ceiling)")
	addr := flag.String("addr", "127.0.0.1:8081", "listen address")
	native := flag.Bool("native", true, "fasthttp: serve /plaintext and /json natively")
	appName := flag.String("app", "target", "target (the target app) or arena (the arena app: net/http's API on nethttp, fasthttp's on fasthttp)")
	data := flag.String("data", "", "the arena app's data directory")
	precompressed := flag.Bool("precompressed", false, "the arena app serves .br/.gz siblings of static files")
	cert := flag.String("cert", "", "serve HTTPS (HTTP/1.1) with this PEM certificate (and -key); nethttp and fasthttp, target app")
	key := flag.String("key", "", "the PEM key of -cert")
	h2c := flag.Bool("h2c", false, "nethttp: also take HTTP/2 by prior knowledge (Protocols.UnencryptedHTTP2)")
	flag.Parse()
	if *appName == "arena" {
		cfg := arena.Config{Dir: *data, Precompressed: *precompressed}
		switch *kind {
		case "nethttp":
			h, err := arena.New(cfg)
			if err != nil {
				log.Fatal(err)
			}
			log.Fatal((&http.Server{Addr: *addr, Handler: h}).ListenAndServe())
		case "fasthttp":
			h, err := arena.NewFast(cfg)
			if err != nil {
				log.Fatal(err)
			}
			s := &fasthttp.Server{Handler: h, Name: "fasthttp", MaxRequestBodySize: 64 << 20}
			log.Fatal(s.ListenAndServe(*addr))
		}
		log.Fatalf("-app arena runs on -kind nethttp or fasthttp, not %q", *kind)
	} else if *appName != "target" {
		log.Fatalf("unknown -app %q", *appName)
	}
	app := targetapp.New()
	if *cert != "" && *kind != "nethttp" && *kind != "fasthttp" {
		log.Fatalf("-cert: -kind %q serves no TLS", *kind)
	}
	switch *kind {
	case "nethttp":
		s := &http.Server{Addr: *addr, Handler: app}
		if *h2c {
			s.Protocols = new(http.Protocols)
			s.Protocols.SetHTTP1(true)
			s.Protocols.SetUnencryptedHTTP2(true)
		}
		if *cert != "" {
			log.Fatal(s.ListenAndServeTLS(*cert, *key))
		}
		log.Fatal(s.ListenAndServe())
	case "fasthttp":
		adapted := fasthttpadaptor.NewFastHTTPHandler(app)
		h := func(ctx *fasthttp.RequestCtx) {
			if *native {
				switch string(ctx.Path()) {
				case "/plaintext":
					ctx.SetContentType("text/plain")
					ctx.SetBodyString("Hello, World!")
					return
				case "/json":
					ctx.SetContentType("application/json")
					ctx.SetBodyString(`{"message":"Hello, World!"}`)
					return
				}
			}
			adapted(ctx)
		}
		s := &fasthttp.Server{Handler: h, Name: "fasthttp", MaxRequestBodySize: 1 << 30}
		if *cert != "" {
			log.Fatal(s.ListenAndServeTLS(*addr, *cert, *key))
		}
		log.Fatal(s.ListenAndServe(*addr))
	case "raw":
		log.Fatal(serveRaw(*addr))
	default:
		log.Fatalf("unknown -kind %q", *kind)
	}
}
