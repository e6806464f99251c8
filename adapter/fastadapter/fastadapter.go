// Package fastadapter serves fasthttp handlers on waitron's engine:
// NewServer, and RequestInfo for a handler. A program of net/http handlers
// does not import it, and so links no fasthttp.
//
// The adapter runs a fasthttp.RequestHandler on each request the engine
// has read, as fasthttp's own server would, but with waitron's reading,
// limits, timeouts and output path: a pooled RequestCtx gets the head's
// fields as fasthttp's parser would put them, the body in memory or as a
// stream over the spool file (RequestBodyStream), and its response leaves
// through the same output queue as a net/http handler's. Its differences
// from fasthttp's own server are in docs/conformance.md.
package fastadapter

import (
	"context"
	"errors"
	"log/slog"

	"github.com/valyala/fasthttp"

	"github.com/waitron/waitron"
	"github.com/waitron/waitron/internal/engine"
	impl "github.com/waitron/waitron/internal/fastadapter"
	"github.com/waitron/waitron/internal/serverkit"
)

// NewServer validates opts and prepares a waitron server for the fasthttp
// handler h (a Fiber app's Handler(), a fasthttp router's) that logs to
// log (slog.Default() when nil): the same engine, options, limits,
// timeouts and hostile-client protections as net/http handlers get. It
// fails, naming the versions, if the fasthttp linked into the program is
// one this adapter does not know.
func NewServer(h fasthttp.RequestHandler, opts waitron.Options, log *slog.Logger) (*waitron.Server, error) {
	if h == nil {
		return nil, errors.New("waitron: the handler is nil")
	}
	if err := impl.CheckFasthttp(); err != nil {
		return nil, err
	}
	e, err := engine.NewFor(impl.Adapter(h), opts, log)
	if err != nil {
		return nil, err
	}
	return serverkit.Wrap(e).(*waitron.Server), nil
}

// RequestInfo returns the Info of a request served by waitron (false for
// one served by fasthttp's own server): what waitress's environ has and
// fasthttp's API does not.
func RequestInfo(ctx *fasthttp.RequestCtx) (waitron.Info, bool) {
	i, ok := impl.RequestInfo(ctx)
	return waitron.Info(i), ok
}

// Context returns the context of a request served by waitron (false for
// one served by fasthttp's own server): it ends when the client is gone
// (or the server closes), as an *http.Request's does, so a slow handler
// can stop early. fasthttp's RequestCtx has no such signal of its own.
func Context(ctx *fasthttp.RequestCtx) (context.Context, bool) { return impl.Context(ctx) }
