// Package waitron serves ordinary net/http handlers with Python waitress's
// serving model: gnet event loops do all socket I/O, requests are read in
// full by a strict HTTP/1.x codec, and a pool of Options.Threads workers
// runs the handlers.
//
// Serve is the front door, like waitress.serve(app, **kw):
//
//	opts := limits.Default()
//	opts.Listen = []string{"127.0.0.1:8080"}
//	log.Fatal(waitron.Serve(handler, opts))
//
// NewServer gives control over shutdown.
package waitron

import (
	"log/slog"
	"net/http"

	"github.com/valyala/fasthttp"

	"github.com/waitron/waitron/adapter"
	"github.com/waitron/waitron/engine"
	"github.com/waitron/waitron/limits"
)

// Server is a waitron server; see engine.Server. Its methods are New's
// server's: Serve, Ready, ReadyErr, Addrs, Stats, Shutdown.
type Server = engine.Server

// ErrWriteAfterReturn is returned by a ResponseWriter's Write and Flush
// once its handler has returned.
var ErrWriteAfterReturn = adapter.ErrWriteAfterReturn

// ErrWriteDeadline is returned by a write past the deadline set with
// http.ResponseController's SetWriteDeadline; it is
// os.ErrDeadlineExceeded to errors.Is.
var ErrWriteDeadline = adapter.ErrWriteDeadline

// CloseReason is why a client connection closed; Stats counts them.
type CloseReason = engine.CloseReason

// Stats is a snapshot of a server's counters (Server.Stats).
type Stats = engine.Stats

// Info is what a handler can learn beyond *http.Request: the scheme,
// server name and port, the url_prefix stripped from the path, and the
// socket peer's address.
type Info = adapter.Info

// RequestInfo returns the Info of a request served by waitron (false for
// requests from another server).
func RequestInfo(r *http.Request) (Info, bool) { return adapter.RequestInfo(r) }

// NewServer validates opts and prepares a server for h that logs to log
// (slog.Default() when nil). Call Serve to run it and Shutdown to stop it.
func NewServer(h http.Handler, opts limits.Options, log *slog.Logger) (*Server, error) {
	return engine.New(h, opts, log)
}

// NewFastHTTPServer is NewServer for a fasthttp.RequestHandler (a Fiber
// app's Handler(), a fasthttp router's): the same engine, options, limits,
// timeouts and hostile-client protections, with the requests given to h
// through waitron's fasthttp adapter. Its differences from fasthttp's own
// server are in docs/conformance.md.
func NewFastHTTPServer(h fasthttp.RequestHandler, opts limits.Options, log *slog.Logger) (*Server, error) {
	return engine.NewFast(h, opts, log)
}

// FastRequestInfo is RequestInfo for a request served by
// NewFastHTTPServer's server.
func FastRequestInfo(ctx *fasthttp.RequestCtx) (Info, bool) { return adapter.FastRequestInfo(ctx) }

// Serve runs h with opts until the server stops; it returns an error if
// the options are invalid or serving failed.
func Serve(h http.Handler, opts limits.Options) error {
	s, err := NewServer(h, opts, nil)
	if err != nil {
		return err
	}
	return s.ListenAndServe()
}
