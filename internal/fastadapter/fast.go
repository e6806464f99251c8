// Package fastadapter is the fasthttp adapter's implementation: the public
// package adapter/fastadapter (NewServer, RequestInfo) is its front, and
// the waitron command and the engine's tests drive it through Adapter.
//
// Serve runs a fasthttp.RequestHandler on a request the engine has read,
// as fasthttp's own server would, but with waitron's reading, limits,
// timeouts and output path. A fasthttp RequestCtx (with its Request and
// Response) is pooled and reused; the head's fields go into it as
// fasthttp's header parser would put them, the body either in memory or
// as a stream over the spool file, and the response leaves through
// adapter.Output like the net/http adapter's.
package fastadapter

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"reflect"
	"runtime/debug"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/valyala/fasthttp"

	"github.com/waitron/waitron/internal/adapter"
	"github.com/waitron/waitron/internal/bufpool"
	"github.com/waitron/waitron/internal/engine"
)

// fastExchange is the pooled state of one fasthttp request.
type fastExchange struct {
	ctx  fasthttp.RequestCtx
	conn fastConn
	tls  fastTLSConn // ctx's connection over TLS: conn, with its TLS state
	log  fastLogger
	out  fastWriter
	bw   *bufio.Writer
	info adapter.Info
	// identLine is "Server: identOf\r\n", the response's default Server
	// line (see setServer).
	identOf   string
	identLine []byte
}

// A pooled ctx is initialised once, for its conn and log, which it keeps
// (their contents change per request): Init2 for every request would
// also read the clock and number a new connection each time, where a
// fasthttp handler sees one ConnID, ConnTime and a counting
// ConnRequestNum per connection, as the engine gives them (see setConn).
var fastPool = sync.Pool{New: func() any {
	fe := new(fastExchange)
	fe.bw = bufio.NewWriterSize(&fe.out, bufpool.SmallSize)
	fe.ctx.Init2(&fe.conn, &fe.log, false)
	return fe
}}

// errFastConn is what a handler gets that reads or writes ctx.Conn()
// directly: the request was read in full and the response goes through
// ctx.Response (or ctx.Hijack).
var errFastConn = errors.New("waitron: the connection is the server's: use ctx.Response, or ctx.Hijack")

// fastConn is what ctx.Conn() returns: the addresses, and write deadlines
// that bound the response's adapter.Output.
type fastConn struct {
	local, remote net.Addr
	out           adapter.Output
	info          *adapter.Info // the request's, for RequestInfo
}

func (c *fastConn) Read([]byte) (int, error)           { return 0, errFastConn }
func (c *fastConn) Write([]byte) (int, error)          { return 0, errFastConn }
func (c *fastConn) Close() error                       { return nil }
func (c *fastConn) LocalAddr() net.Addr                { return c.local }
func (c *fastConn) RemoteAddr() net.Addr               { return c.remote }
func (c *fastConn) SetReadDeadline(time.Time) error    { return nil } // the body is already complete
func (c *fastConn) SetWriteDeadline(t time.Time) error { c.out.SetWriteDeadline(t); return nil }
func (c *fastConn) SetDeadline(t time.Time) error      { return c.SetWriteDeadline(t) }

// fastTLSConn is ctx.Conn() on a TLS connection: fasthttp's IsTLS and
// TLSConnectionState look for these two methods, as they find them on a
// *tls.Conn.
type fastTLSConn struct {
	*fastConn
	state *tls.ConnectionState
}

func (c *fastTLSConn) Handshake() error                     { return nil } // done before the first request
func (c *fastTLSConn) ConnectionState() tls.ConnectionState { return *c.state }

// connOf returns the adapter's connection behind ctx.Conn(), if it is one.
func connOf(ctx *fasthttp.RequestCtx) (*fastConn, bool) {
	switch c := ctx.Conn().(type) {
	case *fastConn:
		return c, true
	case *fastTLSConn:
		return c.fastConn, true
	}
	return nil, false
}

// fasthttp keeps some of what a server of its own needs unexported, with
// no accessor: the handler a fasthttp handler passed to ctx.Hijack (and
// whether it wants a response first), and the request header's content
// length, which its setter cannot set to -2 ("identity", no body) without
// also adding a Transfer-Encoding field, as only its parser does. They are
// reached at their fields' offsets, found (and their types checked) once
// as the program starts: a fasthttp that renames or retypes one makes
// NewServer fail with an error naming them (CheckFasthttp), never a
// request, and never a program that does not serve fasthttp handlers.
var (
	fastHijack           = unexportedField[fasthttp.RequestCtx, fasthttp.HijackHandler]("hijackHandler")
	fastHijackNoResponse = unexportedField[fasthttp.RequestCtx, bool]("hijackNoResponse")
	fastContentLength    = unexportedField[fasthttp.RequestHeader, int]("contentLength")
	fastConnID           = unexportedField[fasthttp.RequestCtx, uint64]("connID")
	fastConnRequestNum   = unexportedField[fasthttp.RequestCtx, uint64]("connRequestNum")
	fastConnTime         = unexportedField[fasthttp.RequestCtx, time.Time]("connTime")
	fastTime             = unexportedField[fasthttp.RequestCtx, time.Time]("time")
	fastRequestLogger    = unexportedField[fasthttp.Request, fasthttp.Logger]("logger")
	fastServerLine       = unexportedField[fasthttp.ResponseHeader, []byte]("serverDefaultLine")
	fastCtxConn          = unexportedField[fasthttp.RequestCtx, net.Conn]("c")
	fastRequestTLS       = unexportedField[fasthttp.Request, bool]("isTLS")
)

// setConn gives ctx the connection and request x is of, as fasthttp's
// own server keeps them: the connection's ID, when it was accepted and
// how many requests it has carried, and the request's time (when it was
// complete here, where fasthttp's server reads the clock again just
// before the handler).
func setConn(ctx *fasthttp.RequestCtx, x *adapter.Exchange) {
	*fastConnID(ctx), *fastConnRequestNum(ctx) = x.ConnID, x.Seq
	*fastConnTime(ctx), *fastTime(ctx) = x.Opened, x.Received
}

// setServer gives the response its default Server field, ident, before
// the handler runs, as fasthttp's own server gives its Name: a preformed
// line the handler may read or replace (Response.Reset clears it again;
// see keepServer for one deleted). The line is made once per pooled
// context and ident.
func (fe *fastExchange) setServer(ident string) {
	if ident == "" {
		return
	}
	if ident != fe.identOf {
		fe.identOf, fe.identLine = ident, []byte("Server: "+ident+"\r\n")
	}
	*fastServerLine(&fe.ctx.Response.Header) = fe.identLine
}

// keepServer puts the default Server line back after the handler if it
// left the response without a Server field (deleted it), as fasthttp's
// own server does.
func (fe *fastExchange) keepServer(ident string) {
	h := &fe.ctx.Response.Header
	if l := fastServerLine(h); ident != "" && len(*l) == 0 && len(h.Server()) == 0 {
		*l = fe.identLine
	}
}

// reinit redoes what Init2 did and a served request may have undone: the
// request's logger (Request.Reset clears it) and the body buffers'
// keeping, which a handler may have turned on.
func (fe *fastExchange) reinit() {
	ctx := &fe.ctx
	*fastRequestLogger(&ctx.Request) = &fe.log
	ctx.Request.KeepBodyBuffer, ctx.Response.KeepBodyBuffer = false, false
}

// unexportedField returns the accessor of S's field name, of type F; if
// the fasthttp linked in has no such field, it records it in
// fieldsMissing (and the accessor is never called: NewServer refuses).
func unexportedField[S, F any](name string) func(*S) *F {
	f, ok := reflect.TypeFor[S]().FieldByName(name)
	if !ok || f.Type != reflect.TypeFor[F]() {
		fieldsMissing = append(fieldsMissing, fmt.Sprintf("%s.%s of type %s", reflect.TypeFor[S]().Name(), name, reflect.TypeFor[F]()))
		return func(*S) *F { panic("waitron: the fasthttp adapter used with a fasthttp it does not support") }
	}
	return func(p *S) *F { return (*F)(unsafe.Add(unsafe.Pointer(p), f.Offset)) }
}

// fieldsMissing are the fields unexportedField did not find.
var fieldsMissing []string

// testedFasthttp is the fasthttp this adapter is built and tested
// against (go.mod).
const testedFasthttp = "v1.78.0"

// CheckFasthttp says why the fasthttp linked into the program cannot be
// served, if it cannot: a field the adapter reaches is missing.
func CheckFasthttp() error {
	if len(fieldsMissing) == 0 {
		return nil
	}
	linked := "an unknown version"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/valyala/fasthttp" {
				linked = d.Version
				if d.Replace != nil {
					linked = d.Replace.Version
				}
			}
		}
	}
	return fmt.Errorf("waitron: the fasthttp adapter supports fasthttp %s (and versions with the same fields); this program links fasthttp %s, which lacks %s",
		testedFasthttp, linked, strings.Join(fieldsMissing, ", "))
}

// fastLogger sends what fasthttp logs through ctx.Logger() to the log of
// the server of the request being served.
type fastLogger struct{ cfg *adapter.Config }

func (l *fastLogger) Printf(format string, args ...any) { l.cfg.Log.Info(fmt.Sprintf(format, args...)) }

// Serve runs h for the request in x and completes its response on
// x.Out, as Serve does for a net/http handler. A panic in h is recovered
// (fasthttp's own server would let it end the process): a 500 before
// anything was sent, else the connection closes.
func Serve(cfg *adapter.Config, h fasthttp.RequestHandler, x *adapter.Exchange) {
	if x.Body != nil {
		defer x.Body.Close()
	}
	fe := fastPool.Get().(*fastExchange)
	defer fe.release()
	ctx := &fe.ctx
	fe.conn = fastConn{local: x.Local, remote: x.Remote, out: x.Out, info: &fe.info}
	if x.TLS != nil {
		// As fasthttp's own server: the ctx's connection is the TLS one,
		// and the request's URI has the https scheme.
		fe.tls = fastTLSConn{&fe.conn, x.TLS}
		*fastCtxConn(ctx), *fastRequestTLS(&ctx.Request) = &fe.tls, true
	}
	fe.log.cfg = cfg
	fe.reinit()
	setConn(ctx, x)
	fe.setServer(cfg.Ident)
	if err := fe.fillRequest(cfg, x); err != nil {
		adapter.RefuseErr(cfg, x, err)
		return
	}
	if detail, ok := runFast(cfg, h, ctx); !ok {
		adapter.RefusePanic(cfg, x, detail)
		return
	}
	fe.respond(cfg, x)
}

// runFast calls h and reports whether it returned normally; if it
// panicked, detail is the 500's (the panic and its stack with
// expose_tracebacks). Nothing has been sent then: a fasthttp handler's
// response leaves only after it returns.
func runFast(cfg *adapter.Config, h fasthttp.RequestHandler, ctx *fasthttp.RequestCtx) (detail string, ok bool) {
	defer func() {
		if ok {
			return
		}
		detail = adapter.Panicked(cfg, string(ctx.Path()), ctx.RemoteAddr().String(), recover())
	}()
	h(ctx)
	return "", true
}

// release readies fe for the next request and puts it back.
func (fe *fastExchange) release() {
	ctx := &fe.ctx
	ctx.Hijack(nil)
	ctx.HijackSetNoResponse(false)
	ctx.SetRemoteAddr(nil)
	ctx.Request.Reset()
	ctx.Response.Reset()
	fe.bw.Reset(&fe.out)
	fe.out.reset()
	fe.conn = fastConn{} // fe.log keeps its adapter.Config: a goroutine the handler left behind may still log
	if fe.tls.state != nil {
		fe.tls = fastTLSConn{}
		*fastCtxConn(ctx) = &fe.conn
	}
	fastPool.Put(fe)
}

// Adapter is how the engine serves h (engine.NewFor), for programs that
// drive the engine itself (the waitron command).
func Adapter(h fasthttp.RequestHandler) engine.Adapter {
	return engine.Adapter{Serve: func(cfg *adapter.Config, x *adapter.Exchange) { Serve(cfg, h, x) }, Bare: true}
}
