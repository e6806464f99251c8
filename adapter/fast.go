package adapter

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"reflect"
	"runtime/debug"
	"sync"
	"time"
	"unsafe"

	"github.com/valyala/fasthttp"

	"github.com/waitron/waitron/codec"
	"github.com/waitron/waitron/internal/bufpool"
)

// The fasthttp adapter: ServeFast runs a fasthttp.RequestHandler on a
// request the engine has read, as fasthttp's own server would, but with
// waitron's reading, limits, timeouts and output path. A fasthttp
// RequestCtx (with its Request and Response) is pooled and reused; the
// head's fields go into it as fasthttp's header parser would put them, the
// body either in memory or as a stream over the spool file, and the
// response leaves through Output like the net/http adapter's.

// fastExchange is the pooled state of one fasthttp request.
type fastExchange struct {
	ctx  fasthttp.RequestCtx
	conn fastConn
	log  fastLogger
	out  fastWriter
	bw   *bufio.Writer
	info Info
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
// that bound the response's Output.
type fastConn struct {
	local, remote net.Addr
	out           Output
	info          *Info // the request's, for FastRequestInfo
}

func (c *fastConn) Read([]byte) (int, error)           { return 0, errFastConn }
func (c *fastConn) Write([]byte) (int, error)          { return 0, errFastConn }
func (c *fastConn) Close() error                       { return nil }
func (c *fastConn) LocalAddr() net.Addr                { return c.local }
func (c *fastConn) RemoteAddr() net.Addr               { return c.remote }
func (c *fastConn) SetReadDeadline(time.Time) error    { return nil } // the body is already complete
func (c *fastConn) SetWriteDeadline(t time.Time) error { c.out.SetWriteDeadline(t); return nil }
func (c *fastConn) SetDeadline(t time.Time) error      { return c.SetWriteDeadline(t) }

// fasthttp keeps some of what a server of its own needs unexported, with
// no accessor: the handler a fasthttp handler passed to ctx.Hijack (and
// whether it wants a response first), and the request header's content
// length, which its setter cannot set to -2 ("identity", no body) without
// also adding a Transfer-Encoding field, as only its parser does. They are
// reached at their fields' offsets, found (and their types checked) once
// at start-up: a fasthttp that renames or retypes one fails here, loudly,
// not at the first request that needs it.
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
)

// setConn gives ctx the connection and request x is of, as fasthttp's
// own server keeps them: the connection's ID, when it was accepted and
// how many requests it has carried, and the request's time (when it was
// complete here, where fasthttp's server reads the clock again just
// before the handler).
func setConn(ctx *fasthttp.RequestCtx, x *Exchange) {
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

// unexportedField returns the accessor of S's field name, of type F.
func unexportedField[S, F any](name string) func(*S) *F {
	f, ok := reflect.TypeFor[S]().FieldByName(name)
	if !ok || f.Type != reflect.TypeFor[F]() {
		panic(fmt.Sprintf("waitron: this fasthttp has no %s.%s of type %s; the fasthttp adapter needs updating",
			reflect.TypeFor[S]().Name(), name, reflect.TypeFor[F]()))
	}
	return func(p *S) *F { return (*F)(unsafe.Add(unsafe.Pointer(p), f.Offset)) }
}

// fastLogger sends what fasthttp logs through ctx.Logger() to the log of
// the server of the request being served.
type fastLogger struct{ cfg *Config }

func (l *fastLogger) Printf(format string, args ...any) { l.cfg.Log.Info(fmt.Sprintf(format, args...)) }

// ServeFast runs h for the request in x and completes its response on
// x.Out, as Serve does for a net/http handler. A panic in h is recovered
// (fasthttp's own server would let it end the process): a 500 before
// anything was sent, else the connection closes.
func ServeFast(cfg *Config, h fasthttp.RequestHandler, x *Exchange) {
	if x.Body != nil {
		defer x.Body.Close()
	}
	fe := fastPool.Get().(*fastExchange)
	defer fe.release()
	ctx := &fe.ctx
	fe.conn = fastConn{local: x.Local, remote: x.Remote, out: x.Out, info: &fe.info}
	fe.log.cfg = cfg
	fe.reinit()
	setConn(ctx, x)
	fe.setServer(cfg.Ident)
	if err := fe.fillRequest(cfg, x); err != nil {
		refuseWith(cfg, x, err)
		return
	}
	if detail, ok := runFast(cfg, h, ctx); !ok {
		refuse(cfg, x, http.StatusInternalServerError, detail, true)
		return
	}
	fe.respond(cfg, x)
}

// runFast calls h and reports whether it returned normally; if it
// panicked, detail is the 500's (the panic and its stack with
// expose_tracebacks). Nothing has been sent then: a fasthttp handler's
// response leaves only after it returns.
func runFast(cfg *Config, h fasthttp.RequestHandler, ctx *fasthttp.RequestCtx) (detail string, ok bool) {
	defer func() {
		if ok {
			return
		}
		p := recover()
		stack := debug.Stack()
		cfg.Log.Error("panic serving request", "path", string(ctx.Path()), "remote", ctx.RemoteAddr().String(),
			"panic", fmt.Sprint(p), "stack", string(stack))
		detail = panicDetail(cfg, p, stack)
	}()
	h(ctx)
	return "", true
}

// fillRequest puts the request of x into fe.ctx.Request: the request line,
// the fields (through fasthttp's own header setters, which treat Host,
// Content-Length, Connection, Cookie and the rest as its parser does), the
// body, and the trusted-proxy and url_prefix rules.
func (fe *fastExchange) fillRequest(cfg *Config, x *Exchange) error {
	req := &fe.ctx.Request
	hd := &req.Header
	if m := x.Head.MethodBytes(); string(m) != fasthttp.MethodGet {
		hd.SetMethodBytes(m) // a reset header's method is GET
	}
	hd.SetRequestURIBytes(x.Head.TargetBytes())
	if x.Head.Minor != 1 {
		hd.SetProtocolBytes(x.Head.Raw()[x.Head.Target.Off+x.Head.Target.Len+1:][:len("HTTP/1.x")])
	}
	announces := false
	for _, f := range x.Head.Fields {
		if x.Framing.HasHost && f.Value == x.Framing.Host && f.Name.Len == 4 {
			// The one Host field (the codec refuses two): where AddBytesKV
			// would put it, without copying and scanning it twice. (Host
			// is never an announced trailer: announce refuses it.)
			hd.SetHostBytes(x.Head.Bytes(f.Value))
			continue
		}
		if f.Name.Len == int32(len("trailer")) && equalFold(x.Head.Bytes(f.Name), "trailer") {
			announces = true // after the other fields: see announce
			continue
		}
		hd.AddBytesKV(x.Head.Bytes(f.Name), x.Head.Bytes(f.Value))
	}
	if announces {
		if err := announce(hd, x.Head); err != nil {
			return err
		}
	}
	if x.Body != nil {
		if x.BodyLen <= bufpool.Size { // in memory already: one copy into fasthttp's body buffer
			if _, err := io.Copy(req.BodyWriter(), x.Body); err != nil {
				return &codec.Error{Status: http.StatusInternalServerError, Detail: "The request body could not be read"}
			}
		} else { // spooled: the handler reads it as a stream, or PostBody reads it whole
			req.SetBodyStream(x.Body, int(x.BodyLen))
		}
	}
	// The framing as fasthttp's parser shows it: a chunked request keeps
	// Transfer-Encoding and a length of -1; one with neither field has the
	// length -2 ("identity"); an HTTP/1.0 request without keep-alive closes.
	switch x.Framing.Body {
	case codec.BodyChunked:
		hd.SetContentLength(-1)
	case codec.BodyNone:
		if !hasField(x.Head, "content-length") {
			// As fasthttp's parser leaves it (see fastContentLength);
			// setting -2 and deleting the field again cost 0.07 µs.
			*fastContentLength(hd) = -2
		}
	}
	if x.Framing.Close && !hd.ConnectionClose() {
		hd.SetConnectionClose()
	}
	fe.info = Info{Scheme: cfg.URLScheme, ServerName: cfg.ServerName, PeerAddr: x.RemoteStr, ServerPort: x.LocalPort}
	if err := fe.applyProxy(cfg, x); err != nil {
		return err
	}
	if p := cfg.URLPrefix; p != "" {
		path := req.URI().Path()
		if string(path) == p || len(path) > len(p) && string(path[:len(p)]) == p && path[len(p)] == '/' {
			req.URI().SetPathBytes(path[len(p):])
			fe.info.ScriptName = p
		}
	}
	if len(x.TrailerFields) > 0 {
		return readFastTrailer(hd, x)
	}
	return nil
}

// errFastTrailer answers a request whose Trailer field or trailer section
// names a field a trailer may not carry, with the status fasthttp's own
// server gives it.
var errFastTrailer = &codec.Error{Status: 400, Detail: "Trailer field not allowed"}

// announce records the names of the head's Trailer fields as fasthttp's
// parser does, refusing the names it refuses. It runs after the other
// fields: announcing first would send a later field of an announced name
// to the trailer section, which the parser does not.
func announce(hd *fasthttp.RequestHeader, h *codec.Head) error {
	for _, f := range h.Fields {
		if f.Name.Len == int32(len("trailer")) && equalFold(h.Bytes(f.Name), "trailer") {
			if err := hd.AddTrailerBytes(h.Bytes(f.Value)); err != nil {
				return errFastTrailer
			}
		}
	}
	return nil
}

// readFastTrailer puts a chunked request's trailer section where
// fasthttp's own server puts it, with fasthttp's own trailer reader: in
// the header's trailer section, never among the head's fields, and the
// names fasthttp refuses (Host, Content-Type, Cookie, X-Forwarded-*, …)
// are a 400 as there. Before that, waitron refuses what fasthttp's list
// lacks but RFC 9110 §6.5.1 and the trusted-proxy rules need kept out (see
// trailerRefused), and a trailer field of a name the head has (fasthttp's
// PeekAll would list the two together, merging the sections as §6.5.2
// forbids): no trailer can change a field the head sent, stand in for
// one the proxy rules removed, or frame, route or authorise the request.
// It runs last, after those rules, which see the head's fields only.
func readFastTrailer(hd *fasthttp.RequestHeader, x *Exchange) error {
	for _, f := range x.TrailerFields {
		if name := x.Trailer[f.Name.Off : f.Name.Off+f.Name.Len]; trailerRefused(name) || hasField(x.Head, string(name)) {
			return errFastTrailer
		}
	}
	b := make([]byte, 0, len(x.Trailer)+2)
	b = append(append(b, x.Trailer...), "\r\n"...)
	if err := hd.ReadTrailer(bufio.NewReaderSize(bytes.NewReader(b), len(b))); err != nil {
		return errFastTrailer
	}
	return nil
}

// trailerRefused reports whether a trailer field of this name is refused
// whatever fasthttp's own list says: the fields that frame or route the
// message, modify or authenticate the request, or say how to process its
// content (RFC 9110 §6.5.1), and every field the trusted-proxy rules read.
func trailerRefused(name []byte) bool {
	switch {
	case hasPrefixFold(name, "content-"), hasPrefixFold(name, "proxy-"), hasPrefixFold(name, "x-forwarded"),
		hasPrefixFold(name, "if-"):
		return true
	}
	for _, n := range refusedTrailers {
		if len(name) == len(n) && equalFold(name, n) {
			return true
		}
	}
	return false
}

// refusedTrailers are the whole names trailerRefused refuses.
var refusedTrailers = [...]string{"host", "transfer-encoding", "connection", "keep-alive", "upgrade", "te",
	"trailer", "authorization", "cookie", "expect", "range", "max-forwards", "forwarded", "x-real-ip",
	"cache-control", "pragma"}

// hasPrefixFold reports whether b starts with the lower-case ASCII prefix,
// ignoring case.
func hasPrefixFold(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && equalFold(b[:len(prefix)], prefix)
}

// FastRequestInfo returns the Info of a request served by waitron's
// fasthttp adapter (false for requests from another server, or once the
// handler has returned). It is reached through ctx.Conn(), the adapter's
// own, not the ctx's user values, which stay the handler's.
func FastRequestInfo(ctx *fasthttp.RequestCtx) (Info, bool) {
	if c, ok := ctx.Conn().(*fastConn); ok && c.info != nil {
		return *c.info, true
	}
	return Info{}, false
}

// applyProxy applies the trusted-proxy options as the net/http adapter
// does, on a small http.Request holding only what the rules read and
// write (Host and the proxy headers), made only when a proxy header is
// present.
func (fe *fastExchange) applyProxy(cfg *Config, x *Exchange) error {
	p := cfg.Proxy
	if p == nil || !hasProxyField(x.Head) {
		return nil // the usual case: nothing to use or to clear
	}
	hd := &fe.ctx.Request.Header
	var r *http.Request
	for i, name := range p.canon {
		v := hd.PeekAll(name)
		if len(v) == 0 {
			continue
		}
		if r == nil {
			r = &http.Request{Header: http.Header{}, Host: string(hd.Host()), RemoteAddr: x.RemoteStr}
		}
		for _, b := range v {
			r.Header[p.canon[i]] = append(r.Header[p.canon[i]], string(b))
		}
	}
	if r == nil {
		return nil
	}
	if err := p.apply(r, &fe.info, x.Remote, cfg.Log); err != nil {
		return &codec.Error{Status: http.StatusBadRequest, Detail: err.Error()}
	}
	for _, name := range p.canon {
		hd.Del(name)
		for _, v := range r.Header[name] {
			hd.Add(name, v)
		}
	}
	if r.Host != string(hd.Host()) {
		hd.SetHost(r.Host)
	}
	if r.RemoteAddr != x.RemoteStr {
		if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
			fe.ctx.SetRemoteAddr(net.TCPAddrFromAddrPort(ap))
		}
	}
	return nil
}

// hasField reports whether the head has a field called name (lower-case).
func hasField(h *codec.Head, name string) bool {
	for _, f := range h.Fields {
		if f.Name.Len == int32(len(name)) && equalFold(h.Bytes(f.Name), name) {
			return true
		}
	}
	return false
}

// respond writes fe.ctx.Response to x.Out, or hands the connection to the
// handler's hijack handler.
func (fe *fastExchange) respond(cfg *Config, x *Exchange) {
	st, ctx := &x.st, &fe.ctx
	resp := &ctx.Response
	hijack := *fastHijack(ctx)
	noResponse := hijack != nil && *fastHijackNoResponse(ctx)
	if ctx.IsHead() {
		resp.SkipBody = true
	}
	closes := x.Framing.Close || cfg.Draining != nil && cfg.Draining() || resp.ConnectionClose()
	forShutdown := !x.Framing.Close && !resp.ConnectionClose() && closes
	if resp.IsBodyStream() && resp.Header.ContentLength() < 0 && !resp.SkipBody {
		// fasthttp chunks a stream of unknown length: its chunks are read
		// as they pass, to count the body for the access log, and for an
		// HTTP/1.0 client, which cannot read chunks, the framing is taken
		// off and the end of the body is the close.
		fe.out.chunks = &codec.ChunkedDecoder{Max: 1<<63 - 1, MaxTrailer: 1 << 20}
		if x.Head.Minor == 0 {
			fe.out.strip, closes = true, true
		}
	}
	if hijack != nil {
		closes = false // the connection is the hijack handler's next
	}
	switch {
	case closes:
		resp.SetConnectionClose()
	case x.Head.Minor == 0:
		resp.Header.Set("Connection", "keep-alive")
	}
	resp.Header.SetNoDefaultContentType(false)
	fe.keepServer(cfg.Ident)
	// (Date is fasthttp's own: its header writer puts in the date its
	// process-wide goroutine refreshes every second, and drops a handler's.)
	//
	// A stream of unknown length (a stream writer's events) leaves at each
	// of its flushes; one of known length is bulk, sent a buffer at a time.
	fe.out.out, fe.out.stream = x.Out, resp.IsBodyStream() && resp.Header.ContentLength() < 0
	fe.out.piece = cfg.SendBytes
	if fe.out.piece <= 0 {
		fe.out.piece = bufpool.Size
	}
	status := resp.StatusCode()
	st.status = status
	o := Outcome{Status: status, Handled: true, Closes: closes, ForShutdown: forShutdown}
	if cfg.LogRequests {
		o.Remote, o.Referer, o.UserAgent = ctx.RemoteAddr().String(), string(ctx.Referer()), string(ctx.UserAgent())
	}
	if !noResponse {
		done, err := fe.sendFileBody(resp, x.Out)
		if !done {
			done, err = fe.writeInMemory(resp, status)
		}
		if !done {
			if err = resp.Write(fe.bw); err == nil {
				err = fe.bw.Flush()
			}
		}
		if err == nil && fe.out.strip && !fe.out.chunks.Done() {
			err = errors.New("waitron: the chunked body stream ended early")
		}
		switch {
		case resp.SkipBody || !codec.BodyAllowed(status):
		case fe.out.chunks != nil:
			o.Bytes = fe.out.body
		default:
			o.Bytes = int64(max(resp.Header.ContentLength(), 0))
		}
		if err != nil {
			fe.out.drop()
			o.Closes, o.ClientGone = true, errors.Is(err, ErrClientGone)
			if !o.ClientGone {
				cfg.Log.Error("writing the response failed", "path", string(ctx.Path()), "err", err)
			}
			_ = x.Out.Send(nil, true, false)
			st.outcome = o
			return
		}
	}
	st.outcome = o
	if hijack == nil {
		if err := fe.out.finish(!closes); err != nil {
			st.outcome.Closes, st.outcome.ClientGone = true, true
		}
		return
	}
	if err := fe.out.flush(); err != nil {
		st.outcome.ClientGone = true
		return
	}
	nc, pre, err := x.Out.Hijack()
	if err != nil {
		st.outcome.ClientGone = true
		return
	}
	st.status = http.StatusSwitchingProtocols
	if len(pre) > 0 {
		nc = &preReadConn{Conn: nc, r: preReader{pre: pre, r: nc}}
	}
	func() {
		defer func() {
			if p := recover(); p != nil {
				cfg.Log.Error("panic in a hijack handler", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			}
		}()
		hijack(nc)
	}()
	nc.Close() // as fasthttp does when its hijack handler returns
}

// sendFileBody sends a response whose body stream is a spooled request
// body (an echo: ctx.SetBodyStream(ctx.RequestBodyStream(), n)) as the
// net/http adapter does: the head, then the file to the socket with
// Output's SendFile as far as the socket takes it, then the rest through
// the usual buffers. done is false when the response is not of that kind
// (Response.Write then sends it).
func (fe *fastExchange) sendFileBody(resp *fasthttp.Response, out Output) (done bool, err error) {
	if !resp.IsBodyStream() { // most responses: no interface assertions to make
		return false, nil
	}
	fb, ok := resp.BodyStream().(FileBody)
	fs, ok2 := out.(FileSender)
	n := resp.Header.ContentLength()
	if !ok || !ok2 || n < sendFileMin || resp.SkipBody || fe.out.chunks != nil || len(resp.Header.PeekTrailerKeys()) > 0 {
		return false, nil
	}
	f, off, avail := fb.UnreadSection()
	if f == nil || avail < int64(n) {
		return false, nil
	}
	fe.out.bufs = append(fe.out.bufs, resp.Header.AppendBytes(bufpool.GetSmall()))
	if err := fe.out.flush(); err != nil {
		return true, err
	}
	k := fs.SendFile(f, off, int64(n))
	fb.Sent(k)
	if rest := int64(n) - k; rest > 0 {
		if _, err := io.CopyN(&fe.out, resp.BodyStream(), rest); err != nil {
			return true, err
		}
	}
	return true, resp.CloseBodyStream()
}

// writeInMemory serialises a response whose body is in memory as
// Response.Write does (its Content-Length set from the body, the head,
// the body unless skipped), straight into the output's buffers: the head
// built in a pooled buffer, the body copied behind it. Response.Write
// would copy both into its bufio.Writer first and out of it again. done
// is false for a response it leaves to Response.Write: a body stream, or
// trailers (sent chunked).
func (fe *fastExchange) writeInMemory(resp *fasthttp.Response, status int) (done bool, err error) {
	if resp.IsBodyStream() || len(resp.Header.PeekTrailerKeys()) > 0 {
		return false, nil
	}
	body := resp.Body()
	// fasthttp's rule for a status with no body (mustSkipBody): 1xx, 204,
	// 304, and nothing under 100.
	send := !resp.SkipBody && !(status >= 100 && status < 200 || status == http.StatusNoContent || status == http.StatusNotModified)
	if send || len(body) > 0 {
		resp.Header.SetContentLength(len(body))
	}
	fe.out.bufs = append(fe.out.bufs, resp.Header.AppendBytes(bufpool.GetSmall()))
	if send && len(body) > 0 {
		_, err = fe.out.Write(body)
	}
	return true, err
}

// preReadConn is a hijacked connection whose first bytes were read before
// the hijack (sent right behind the request).
type preReadConn struct {
	net.Conn
	r preReader
}

func (c *preReadConn) Read(p []byte) (int, error) { return c.r.Read(p) }

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
	fe.conn = fastConn{} // fe.log keeps its Config: a goroutine the handler left behind may still log
	fastPool.Put(fe)
}

// fastWriter is the io.Writer under fasthttp's Response.Write: it collects
// the response into pooled buffers and hands them to Output once they hold
// send_bytes, and at every write of a body stream of unknown length (a
// stream writer's Flush reaches the client then). (The framing is
// fasthttp's: a body in memory always gets its Content-Length.)
type fastWriter struct {
	out    Output
	bufs   [][]byte // collected for the next Send, in arr while it fits
	arr    [4][]byte
	stream bool
	body   int64                 // payload of a chunked stream, for the access log
	head   bool                  // the head has been seen (a chunked stream's)
	chunks *codec.ChunkedDecoder // a stream of unknown length: fasthttp chunks it
	strip  bool                  // … and the chunk framing is taken off (HTTP/1.0)
	raw    []byte                // chunk framing not yet decoded
	lost   bool                  // the framing could not be read: counting stopped
	piece  int                   // send_bytes: what is collected leaves once it reaches this
	err    error
}

func (w *fastWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	n := len(p)
	if w.chunks != nil {
		w.chunkedWrite(p)
	} else {
		w.add(p)
	}
	if w.stream || w.pending() >= w.piece {
		w.err = w.flush()
	}
	return n, w.err
}

// ReadFrom is where fasthttp's writer of a body of known length hands a
// file over (a large file of fasthttp.FS or ctx.SendFile, an *os.File
// body stream, under an io.LimitedReader), as its own server hands it to
// the TCP connection for sendfile: the head collected so far goes first,
// then what the socket takes of the file goes by Output's SendFile, and
// the rest, like any other reader's bytes, through Write.
func (w *fastWriter) ReadFrom(r io.Reader) (int64, error) {
	var sent int64
	if fs, ok := w.out.(FileSender); ok && w.err == nil && w.chunks == nil && !w.stream {
		// Only a file under a limit: fasthttp's writer bounds it by the
		// body's declared length, which this writer does not know.
		if sec, ok := fileSectionOf(r); ok && sec.lr != nil && sec.n >= sendFileMin {
			if w.err = w.flush(); w.err != nil {
				return 0, w.err
			}
			sent = fs.SendFile(sec.f, sec.off, sec.n)
			sec.sent(sent)
		}
	}
	buf := bufpool.GetSmall()
	defer bufpool.Put(buf)
	n, err := io.CopyBuffer(writeOnly{w}, r, buf[:cap(buf)])
	return sent + n, err
}

// chunkedWrite passes on a chunked stream, reading its chunks as they go
// to count the payload; with strip (an HTTP/1.0 client) it passes on the
// head without its Transfer-Encoding and the payload without its chunk
// lines instead.
func (w *fastWriter) chunkedWrite(p []byte) {
	if !w.strip {
		w.add(p)
		if w.lost {
			return
		}
	}
	w.raw = append(w.raw, p...)
	if !w.head {
		end := indexHeadEnd(w.raw)
		if end < 0 {
			return
		}
		w.head = true
		if w.strip {
			w.add(dropField(w.raw[:end], "Transfer-Encoding"))
		}
		w.raw = w.raw[:copy(w.raw, w.raw[end:])]
	}
	rest := w.raw
	for len(rest) > 0 && !w.chunks.Done() {
		k, data, err := w.chunks.Decode(rest)
		if w.strip {
			w.add(data)
		}
		w.body += int64(len(data))
		if err != nil {
			w.err, w.lost = err, true
			if !w.strip {
				w.err = nil // only counting: the bytes still pass
			}
			break
		}
		if k == 0 {
			break
		}
		rest = rest[k:]
	}
	if w.chunks.Done() || w.lost {
		rest = nil
	}
	w.raw = w.raw[:copy(w.raw, rest)] // keep only the undecoded tail
}

// indexHeadEnd returns the length of the response head at the start of b
// (through its blank line), or -1.
func indexHeadEnd(b []byte) int {
	for i := 0; i+3 < len(b); i++ {
		if b[i] == '\r' && b[i+1] == '\n' && b[i+2] == '\r' && b[i+3] == '\n' {
			return i + 4
		}
	}
	return -1
}

// dropField returns head without its field lines named name.
func dropField(head []byte, name string) []byte {
	out := make([]byte, 0, len(head))
	for len(head) > 0 {
		i := 0
		for i+1 < len(head) && !(head[i] == '\r' && head[i+1] == '\n') {
			i++
		}
		line := head[:min(i+2, len(head))]
		head = head[len(line):]
		if len(line) > len(name) && line[len(name)] == ':' && equalFold(line[:len(name)], name) {
			continue
		}
		out = append(out, line...)
	}
	return out
}

func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		c, d := b[i]|0x20, s[i]|0x20
		if c != d {
			return false
		}
	}
	return true
}

// add appends p to the pooled buffers.
func (w *fastWriter) add(p []byte) {
	for len(p) > 0 {
		if len(w.bufs) == 0 || len(w.bufs[len(w.bufs)-1]) == cap(w.bufs[len(w.bufs)-1]) {
			b := bufpool.GetSmall()
			if len(w.bufs) > 0 || len(p) > bufpool.SmallSize {
				b = bufpool.Get()
			}
			w.bufs = append(w.bufs, b)
		}
		last := &w.bufs[len(w.bufs)-1]
		k := copy((*last)[len(*last):cap(*last)], p)
		*last = (*last)[:len(*last)+k]
		p = p[k:]
	}
}

func (w *fastWriter) pending() int {
	n := 0
	for _, b := range w.bufs {
		n += len(b)
	}
	return n
}

// flush hands what is collected to Output, not as the end of the
// response.
func (w *fastWriter) flush() error {
	if len(w.bufs) == 0 {
		return nil
	}
	return w.send(false, true)
}

// finish hands the rest to Output as the end of the response.
func (w *fastWriter) finish(keepAlive bool) error { return w.send(true, keepAlive) }

// send hands the buffers collected to Send, which keeps them (not the
// array holding them). They stop being w's before the call: were Send to
// panic after recycling them, release's drop must not recycle them again
// (two owners of one pooled buffer would mix two responses' bytes).
func (w *fastWriter) send(last, keepAlive bool) error {
	bufs := w.bufs
	w.bufs = w.arr[:0]
	err := w.out.Send(bufs, last, keepAlive)
	clear(bufs)
	return err
}

// emptied forgets the slices collected, to collect the next ones in arr.
func (w *fastWriter) emptied() {
	clear(w.bufs)
	w.bufs = w.arr[:0]
}

// drop recycles what was collected but not sent.
func (w *fastWriter) drop() {
	for _, b := range w.bufs {
		bufpool.Put(b)
	}
	w.emptied()
}

func (w *fastWriter) reset() {
	w.drop()
	*w = fastWriter{}
	w.bufs = w.arr[:0]
}
