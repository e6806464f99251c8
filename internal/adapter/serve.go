package adapter

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/waitron/waitron/codec"
	"github.com/waitron/waitron/internal/bufpool"
)

// Serve runs h for the request in x and completes its response on x.Out. It
// is called on a worker goroutine and returns when the response has been
// handed to the connection in full (or the connection is known dead). A
// panic in h is recovered here, the one place user code is recovered: before the
// head was sent it becomes a 500 (with the stack only when
// ExposeTracebacks); after, the connection is closed, which the client sees
// as a truncated response. http.ErrAbortHandler aborts without a log line.
func Serve(cfg *Config, h http.Handler, x *Exchange) {
	st, hs := &x.State, x.HTTP
	if hs == nil {
		hs = new(HTTPState)
		x.HTTP = hs
	}
	hs.ctx.parent = x.Ctx
	ctx := &hs.ctx
	defer ctx.cancel(context.Canceled)
	if x.Body != nil {
		// Whatever happens (a refused request, a panic); closing twice is
		// harmless.
		defer x.Body.Close()
	}
	req, err := newRequest(hs, cfg, x)
	if err != nil {
		RefuseErr(cfg, x, err)
		return
	}
	w := &hs.w
	w.init(cfg, req, x.Out, x.Head.Minor, x.Ctx)
	defer w.finish()
	w.continued = x.Continued
	if cfg.WriteTimeout > 0 {
		_ = w.SetWriteDeadline(time.Now().Add(cfg.WriteTimeout))
	}
	if req.Method == http.MethodOptions && req.RequestURI == "*" && !cfg.PassOptionsStar {
		h = globalOptions{} // the server answers it, as net/http does
	}
	if !run(cfg, h, st, w, req) {
		return
	}
	if w.hijacked {
		st.Status = http.StatusSwitchingProtocols
		return // a hijacked connection is its handler's: nothing more goes to Output
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	w.done.Store(true)
	if x.Body != nil {
		// Before the response leaves: a spooled body's file is then free
		// for the next body the client sends once it has the response.
		x.Body.Close()
	}
	_ = w.flush(true)
	st.Status = w.status
}

// Status returns the status of the response sent for x (500 for a handler
// that panicked before its head, 101 for a hijack), once Serve returned;
// 0 before. Worker only.
func (x *Exchange) Status() int { return x.State.Status }

// Outcome is what an access log says of a served request, once Serve
// returned. Worker only.
type Outcome struct {
	// Request is the request as the handler saw it (RemoteAddr as the
	// trusted-proxy rules resolved it); nil when it was refused before a
	// handler could see it.
	Request *http.Request
	Status  int
	// Bytes is the body bytes sent (for an error the server answered, the
	// whole response).
	Bytes int64
	// Closes says the connection closes after this response (Connection:
	// close, HTTP/1.0, a body without a length, a client gone, a panic).
	Closes bool
	// ClientGone says the client could no longer receive the response.
	ClientGone bool
	// ForShutdown says the connection closes only because the server was
	// shutting down when the response's head was written.
	ForShutdown bool
	// Handled says a handler ran (false: the server refused the request).
	Handled bool
	// Remote, Referer and UserAgent are the client (as the trusted-proxy
	// rules resolved it) and those fields, for the access log, when the
	// request was no *http.Request (the fasthttp adapter, with
	// Config.LogRequests).
	Remote, Referer, UserAgent string
}

// Outcome returns x's outcome. Worker only, after Serve.
func (x *Exchange) Outcome() Outcome {
	if x.State.Outcome.Status != 0 { // the fasthttp adapter's
		return x.State.Outcome
	}
	if x.HTTP == nil { // refused before a net/http handler's state was made
		return Outcome{Status: x.State.Status, Bytes: x.State.ErrorBytes, Closes: true}
	}
	w := &x.HTTP.w
	o := Outcome{Request: w.req, Status: x.State.Status, Bytes: w.written, Closes: w.closeAfter || w.failed, ClientGone: w.failed,
		ForShutdown: w.drainClose, Handled: w.req != nil}
	if w.req == nil {
		o.Bytes, o.Closes = x.State.ErrorBytes, true
	}
	return o
}

// globalOptions answers "OPTIONS * HTTP/1.1" (RFC 9110 §9.3.7), a question
// about the server rather than a resource, as net/http's server does: 200
// with an empty body, never reaching the handler (whose router would not
// know the target "*").
type globalOptions struct{}

func (globalOptions) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Length", "0")
}

// ExchangeState is what either adapter records of a request it served,
// part of its Exchange.
type ExchangeState struct {
	Status     int     // of the response sent (see Exchange.Status)
	ErrorBytes int64   // the size of the error response sent for a refused request
	Outcome    Outcome // the fasthttp adapter's outcome (the net/http adapter's is read off w)
}

// HTTPState is what a request served to a net/http handler needs of its
// own: its context (which a handler may keep past the response), its
// ResponseWriter and its URL. The engine allocates it with the request,
// in one allocation (Exchange.HTTP); a fasthttp handler's request has
// none, and is the smaller for it.
type HTTPState struct {
	ctx reqCtx
	w   response
	url url.URL
	req http.Request
}

// run calls the handler and reports whether it returned normally. On a
// panic it has already answered or aborted the connection.
func run(cfg *Config, h http.Handler, st *ExchangeState, w *response, req *http.Request) (ok bool) {
	defer func() {
		if ok {
			return
		}
		p := recover()
		w.done.Store(true)
		detail := Panicked(cfg, req.URL.Path, req.RemoteAddr, p)
		if w.pending != nil {
			bufpool.Put(w.pending)
			w.pending = nil
		}
		if w.headBuf != nil {
			bufpool.Put(w.headBuf)
			w.headBuf = nil
		}
		if w.hijacked {
			st.Status = http.StatusSwitchingProtocols
			return // the connection is the handler's; nothing to answer on
		}
		w.closeAfter = true // whichever way it ends, the connection closes
		if w.headSent || w.failed || p == http.ErrAbortHandler {
			st.Status = w.status
			_ = w.out.Send(nil, true, false) // abort: close after what was sent
			return
		}
		st.Status = http.StatusInternalServerError
		_, _ = w.out.Refuse(http.StatusInternalServerError, detail, w.isHead)
	}()
	h.ServeHTTP(w, req)
	return true
}

// Refuse answers x, whose handler never ran or panicked before its
// response began, with the server's error response of status (Status and
// Outcome then say so), and ends the response: the connection closes
// after it. Its body is closed first, so that its spool file is free for
// the client's next body. It is the one way either adapter, and the
// engine's worker side, answer for the handler. Worker only.
func Refuse(cfg *Config, x *Exchange, status int, detail string) {
	refuse(cfg, x, status, detail, false)
}

// RefusePanic is Refuse for a handler that panicked before its response
// began: a 500 with detail (Panicked's). Worker only.
func RefusePanic(cfg *Config, x *Exchange, detail string) {
	refuse(cfg, x, http.StatusInternalServerError, detail, true)
}

// refuse is Refuse; handled says a handler ran (a panic's 500).
func refuse(cfg *Config, x *Exchange, status int, detail string, handled bool) {
	st := &x.State
	if x.Body != nil {
		x.Body.Close()
	}
	n, _ := x.Out.Refuse(status, detail, x.Head.IsHEAD())
	st.Status, st.ErrorBytes = status, n
	st.Outcome = Outcome{Status: status, Bytes: n, Closes: true, Handled: handled}
}

// refuseWith refuses x with the status and detail of err, a *codec.Error.
func RefuseErr(cfg *Config, x *Exchange, err error) {
	var ce *codec.Error
	if !errors.As(err, &ce) {
		ce = &codec.Error{Status: http.StatusInternalServerError, Detail: "Internal error"}
	}
	refuse(cfg, x, ce.Status, ce.Detail, false)
}

// panicked logs a handler's panic p, with its stack (unless it is
// http.ErrAbortHandler, net/http's silent abort), and returns the detail
// of the 500 that answers it. Both adapters' one way to take a panic.
func Panicked(cfg *Config, path, remote string, p any) string {
	stack := debug.Stack()
	if p != http.ErrAbortHandler {
		cfg.Log.Error("panic serving request", "path", path, "remote", remote, "panic", fmt.Sprint(p), "stack", string(stack))
	}
	return panicDetail(cfg, p, stack)
}

// panicDetail is the detail of a panic's 500: the panic and its stack with
// expose_tracebacks, else a sentence.
func panicDetail(cfg *Config, p any, stack []byte) string {
	if cfg.ExposeTracebacks {
		return fmt.Sprintf("%v\n\n%s", p, stack)
	}
	return "The server encountered an unexpected internal server error"
}

// ErrorResponse appends a complete server-generated response in waitress's
// format: the body is "Reason\r\n\r\nDetail\r\n\r\n(generated by <ident>)"
// as text/plain; charset=utf-8 with a Content-Length, and Connection: close
// since the connection always closes after it; a 503 says Retry-After: 1.
// The answer to a HEAD request (head) has the same head and no body (RFC
// 9110 §9.3.2).
func ErrorResponse(b []byte, cfg *Config, status int, detail string, head bool) []byte {
	tag := cfg.Ident
	if tag == "" {
		tag = "server"
	}
	reason := http.StatusText(status)
	bodyLen := len(reason) + 4 + len(detail) + 4 + len("(generated by )") + len(tag)
	b = codec.AppendStatusLine(b, status, http.StatusText(status))
	b = append(b, "Connection: close\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(bodyLen), 10)
	b = append(b, "\r\nContent-Type: text/plain; charset=utf-8\r\n"...)
	if cfg.AppendDate != nil {
		b = cfg.AppendDate(append(b, "Date: "...))
		b = append(b, "\r\n"...)
	}
	if status == http.StatusServiceUnavailable {
		// The server is full (connection_limit, queue_limit, queue_timeout):
		// a client or load balancer may try again, here or elsewhere.
		b = append(b, "Retry-After: 1\r\n"...)
	}
	if cfg.Ident != "" {
		b = codec.AppendField(b, "Server", cfg.Ident)
	}
	b = append(b, "\r\n"...)
	if head {
		return b
	}
	b = append(b, reason...)
	b = append(b, "\r\n\r\n"...)
	b = append(b, detail...)
	b = append(b, "\r\n\r\n(generated by "...)
	b = append(b, tag...)
	return append(b, ')')
}
