package engine

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/waitron/waitron/internal/adapter"
	"github.com/waitron/waitron/internal/bufpool"
)

// env is what a connection works with, and all of the server it can
// reach: the settings and the handler, the logger, the counters and the
// clock, the dispatcher, the stores of spool files and loops, and the
// flags of the server's life. The Server holds one (embedded) and hands
// it to every connection (conn.e, writer.e); listeners, the runs of the
// loops, Shutdown's state and the rest stay out of a connection's reach.
type env struct {
	cfg     config
	acfg    adapter.Config
	clock   clock
	log     *slog.Logger
	handler http.Handler                                   // the net/http handler, or nil…
	serveX  func(cfg *adapter.Config, x *adapter.Exchange) // …how another adapter serves (Adapter.Serve)
	bare    bool                                           // Adapter.Bare: no request context or net/http state
	disp    *dispatcher
	h2      *h2Server   // HTTP/2 (nil: http2 off, or not net/http handlers)
	counts  counters    // responses, durations, bytes, restarts, spools
	closes  closeCounts // closed connections by reason
	access  *accessLog  // access_log; nil when off (set by Serve before the loops start)
	tmpDir  string
	files   *fileCache // temporary files for request bodies over inbuf_overflow
	loops   sync.Map   // gnet.EventLoop → *loopConns
	// baseCtx is the root of every connection's context: it carries
	// http.ServerContextKey.
	baseCtx context.Context
	netHTTP NetHTTP // what net/http.Server has beyond the options (SetNetHTTP)

	draining  atomic.Bool // Shutdown has begun: no new request is read
	stopping  atomic.Bool // Shutdown or Close: the loops are being stopped
	loopsGone atomic.Bool // gnet has returned: no Async*/Close/Execute calls any more
	// noKeepAlive: SetKeepAlivesEnabled(false); every response closes its connection.
	noKeepAlive atomic.Bool
	// The shedding log's state (noteShed): when it last wrote a line, and
	// the count of shed requests it reported.
	shedLogged   atomic.Int64
	shedReported atomic.Uint64
	// yieldToWorkers is set by Serve when there are no more Ps than event
	// loops: a loop then yields its P to the workers after a hand-off, or
	// after several (loopConns.yieldAfter).
	yieldToWorkers bool
	// hooks are set by tests before Serve (export_test.go) and only read
	// after, none of them on the request path.
	hooks struct {
		// noTickCollect keeps the per-second checks from collecting the
		// responses workers wrote themselves (see conn.collect), to show
		// that the prompt paths need no tick.
		noTickCollect bool
		// accessJSON, when set, wraps the JSON access log's handler as
		// Serve opens it (a test's panic there stands in for a bug in
		// worker-side code).
		accessJSON func(slog.Handler) slog.Handler
		// drainReport, when set, is how often Shutdown reports what it
		// waits for instead of the constant's 10 s, so a test sees the
		// report without waiting for it.
		drainReport time.Duration
	}
}

// errorResponse builds the server's error response of status (waitress's
// format: adapter.ErrorResponse) in a pooled buffer: the one place
// server-generated responses are made, for the loop's answers
// (conn.answerUnserved) and the adapters' (Output.Refuse). Any goroutine.
func (e *env) errorResponse(status int, detail string, head bool) []byte {
	return adapter.ErrorResponse(bufpool.GetSmall(), &e.acfg, status, detail, head)
}

// noteShed counts a request shed for why (queue_limit, queue_timeout) and
// logs, at most once a second, how many were shed since the last line.
// Any goroutine.
func (e *env) noteShed(why string) {
	n := e.counts.shed.Add(1)
	now := int64(e.clock.stamp())
	last := e.shedLogged.Load()
	if (last == 0 || now-last >= int64(time.Second)) && e.shedLogged.CompareAndSwap(last, now) {
		prev := e.shedReported.Swap(n)
		e.log.Warn("shedding load: requests answered 503 without running their handler", "shed", n-prev, "reason", why,
			"queued", e.disp.queued())
	}
}
