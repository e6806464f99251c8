package fastadapter

import (
	"bufio"
	"bytes"
	"context"
	"github.com/waitron/waitron/internal/adapter"
	"io"
	"net"
	"net/http"
	"net/netip"

	"github.com/valyala/fasthttp"

	"github.com/waitron/waitron/codec"
	"github.com/waitron/waitron/internal/bufpool"
)

// The request a fasthttp handler sees: filled from the codec's head as
// fasthttp's own parser would fill it, with the trailer, the trusted-proxy
// rules and url_prefix applied.

// fillRequest puts the request of x into fe.ctx.Request: the request line,
// the fields (through fasthttp's own header setters, which treat Host,
// Content-Length, Connection, Cookie and the rest as its parser does), the
// body, and the trusted-proxy and url_prefix rules.
func (fe *fastExchange) fillRequest(cfg *adapter.Config, x *adapter.Exchange) error {
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
		if f.Name.Len == int32(len("trailer")) && codec.EqualFold(x.Head.Bytes(f.Name), "trailer") {
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
			// As fasthttp's parser leaves it (see fastContentLength),
			// without setting -2 and deleting the field it adds again.
			*fastContentLength(hd) = -2
		}
	}
	if x.Framing.Close && !hd.ConnectionClose() {
		hd.SetConnectionClose()
	}
	fe.info = adapter.Info{Scheme: cfg.Scheme(x), ServerName: cfg.ServerName, PeerAddr: x.RemoteStr, ServerPort: x.LocalPort}
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
		if f.Name.Len == int32(len("trailer")) && codec.EqualFold(h.Bytes(f.Name), "trailer") {
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
func readFastTrailer(hd *fasthttp.RequestHeader, x *adapter.Exchange) error {
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
		if len(name) == len(n) && codec.EqualFold(name, n) {
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
	return len(b) >= len(prefix) && codec.EqualFold(b[:len(prefix)], prefix)
}

// RequestInfo returns the adapter.Info of a request served by waitron's
// fasthttp adapter (false for requests from another server, or once the
// handler has returned). It is reached through ctx.Conn(), the adapter's
// own, not the ctx's user values, which stay the handler's.
func RequestInfo(ctx *fasthttp.RequestCtx) (adapter.Info, bool) {
	if c, ok := connOf(ctx); ok && c.info != nil {
		return *c.info, true
	}
	return adapter.Info{}, false
}

// Context returns the context of a request served by waitron's fasthttp
// adapter: it ends when the client is gone or the server closes (false
// for requests from another server, or once the handler has returned).
func Context(ctx *fasthttp.RequestCtx) (context.Context, bool) {
	if c, ok := connOf(ctx); ok && c.info != nil {
		if cp, ok := c.out.(interface{ Context() context.Context }); ok {
			return cp.Context(), true
		}
	}
	return nil, false
}

// applyProxy applies the trusted-proxy options as the net/http adapter
// does, on a small http.Request holding only what the rules read and
// write (Host and the proxy headers), made only when a proxy header is
// present.
func (fe *fastExchange) applyProxy(cfg *adapter.Config, x *adapter.Exchange) error {
	p := cfg.Proxy
	if p == nil || !adapter.HasProxyField(x.Head) {
		return nil // the usual case: nothing to use or to clear
	}
	hd := &fe.ctx.Request.Header
	var r *http.Request
	for i, name := range p.Canon {
		v := hd.PeekAll(name)
		if len(v) == 0 {
			continue
		}
		if r == nil {
			r = &http.Request{Header: http.Header{}, Host: string(hd.Host()), RemoteAddr: x.RemoteStr}
		}
		for _, b := range v {
			r.Header[p.Canon[i]] = append(r.Header[p.Canon[i]], string(b))
		}
	}
	if r == nil {
		return nil
	}
	if err := p.Apply(r, &fe.info, x.Remote, cfg.Log); err != nil {
		return &codec.Error{Status: http.StatusBadRequest, Detail: err.Error()}
	}
	for _, name := range p.Canon {
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
		if f.Name.Len == int32(len(name)) && codec.EqualFold(h.Bytes(f.Name), name) {
			return true
		}
	}
	return false
}
