// Package adapter runs ordinary net/http handlers on requests framed by the
// codec: it builds the *http.Request, provides the http.ResponseWriter that
// frames the response, and recovers handler panics — the only recover()
// around user code (the engine's guard recovers only its own loop-side
// code, to close one connection instead of the process).
//
// Its exported names are the seam the engine uses (Exchange, Output,
// Config, Serve, …) and what the root package re-exports (Info,
// RequestInfo, the errors a handler may meet); they are not a stable API:
// use package waitron.
package adapter

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/waitron/waitron/codec"
)

// Exchange is one complete, fully buffered request and where its response
// goes. The engine fills it on the event loop and hands it to a worker.
type Exchange struct {
	Head    *codec.Head
	Framing codec.Framing
	Body    io.ReadCloser // nil when the request has no body
	BodyLen int64         // decoded body length
	// Trailer is a chunked body's trailer field lines (each ending in
	// CRLF), and TrailerFields those fields as spans into it.
	Trailer       []byte
	TrailerFields []codec.Field
	// Continued says the server already sent 100 Continue for this
	// request: a handler's own WriteHeader(100) is then not sent again.
	Continued bool
	Remote    net.Addr
	Local     net.Addr // the address the client connected to
	// RemoteStr and LocalPort are Remote.String() and Local's port ("" for
	// a unix socket), computed once per connection; empty means compute.
	RemoteStr string
	LocalPort string
	Ctx       context.Context // the connection's context: ends when the client is gone
	// TLS is the connection's TLS state (r.TLS), shared by its requests;
	// nil on a plain connection.
	TLS *tls.ConnectionState
	// ConnID numbers the connection (unique in the process) and Seq the
	// request on it (from 1); Opened is when the connection was accepted
	// and Received when the request was complete, from the clock
	// readings the server makes anyway (fasthttp handlers see them as
	// ctx.ConnID, ConnRequestNum, ConnTime and Time; the times are set
	// only for them).
	ConnID, Seq      uint64
	Opened, Received time.Time
	Out              Output
	// HTTP is what serving the request to a net/http handler needs of its
	// own (its context, which a handler may keep, its ResponseWriter, its
	// URL), allocated by the engine with the request so that one
	// allocation holds it all; Serve makes one when it is nil.
	HTTP *HTTPState

	// st is what either adapter records of the response. An Exchange is
	// served once, and never copied.
	State ExchangeState // what the adapter recorded (Status, Outcome)
}

// errBadTarget is returned for a request-target that net/url cannot parse
// although the codec accepted it; the fuzz differential keeps this rare.
var errBadTarget = &codec.Error{Status: 400, Detail: "Request-target is invalid"}

// newRequest builds the *http.Request a handler sees, following what
// net/http's server does: Host moves from the header to r.Host (the
// request-target's authority wins, RFC 9112 §3.2.2), field names are
// canonical, and Transfer-Encoding leaves the header map: a chunked
// request shows TransferEncoding ["chunked"] and ContentLength -1, as
// net/http shows it, although its body is already complete here.
func newRequest(hs *HTTPState, cfg *Config, x *Exchange) (*http.Request, error) {
	ctx := &hs.ctx
	h := x.Head
	// One string holds the whole head; the target and field values are
	// substrings of it, so they cost one allocation together.
	raw := string(h.Raw())
	str := func(s codec.Span) string { return raw[s.Off : s.Off+s.Len] }
	method := internMethod(h.MethodBytes())
	target := str(h.Target)
	u := &hs.url
	switch {
	case method == http.MethodConnect:
		*u = url.URL{Host: target}
	case !plainTarget(u, target):
		var err error
		if u, err = url.ParseRequestURI(target); err != nil {
			return nil, errBadTarget
		}
	}
	kept := len(h.Fields)
	if x.Framing.HasHost {
		kept-- // a request with only Host gets no backing array
	}
	header := make(http.Header, kept)
	var values []string
	if kept > 0 {
		values = make([]string, len(h.Fields)) // one backing array, as net/textproto does
	}
	for i, f := range h.Fields {
		key := canonicalKey(h.Bytes(f.Name), str(f.Name))
		if key == "Host" || key == "Transfer-Encoding" {
			continue // Host moves to r.Host; the body is complete, so its coding is gone
		}
		if vs := header[key]; vs != nil {
			header[key] = append(vs, str(f.Value))
			continue
		}
		values[i] = str(f.Value)
		header[key] = values[i : i+1 : i+1]
	}
	remote := x.RemoteStr
	if remote == "" {
		remote = x.Remote.String()
	}
	r := &http.Request{
		Method:     method,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: h.Minor,
		Header:     header,
		Host:       u.Host,
		RequestURI: target,
		RemoteAddr: remote,
		Close:      x.Framing.Close,
		Body:       http.NoBody,
	}
	if h.Minor != 1 {
		r.Proto = "HTTP/1." + string(rune('0'+h.Minor)) // as net/http shows HTTP/1.0, and a later 1.x
	}
	if r.Host == "" && x.Framing.HasHost {
		r.Host = str(x.Framing.Host)
	}
	if x.Body != nil {
		r.Body = x.Body
		r.ContentLength = x.BodyLen
	}
	if x.Framing.Body == codec.BodyChunked {
		r.TransferEncoding, r.ContentLength = []string{"chunked"}, -1
	}
	if x.Framing.Body == codec.BodyChunked {
		if err := takeTrailer(r, x); err != nil {
			return nil, err
		}
	}
	if x.TLS != nil {
		r.TLS = x.TLS
	}
	ctx.info = Info{Scheme: cfg.Scheme(x), ServerName: cfg.ServerName, PeerAddr: r.RemoteAddr, ServerPort: x.LocalPort}
	info := &ctx.info
	if a, ok := x.Local.(*net.TCPAddr); ok && x.LocalPort == "" {
		info.ServerPort = strconv.Itoa(a.Port)
	}
	if cfg.Proxy != nil && HasProxyField(h) { // with none, the rules have nothing to use or clear
		if err := cfg.Proxy.Apply(r, info, x.Remote, cfg.Log); err != nil {
			return nil, &codec.Error{Status: http.StatusBadRequest, Detail: err.Error()}
		}
	}
	stripPrefix(r, cfg.URLPrefix, info)
	// WithContext is the only way to set a Request's context; inlined, its
	// copy stays on the stack, and the handler's Request is the one in hs.
	hs.req = *r.WithContext(ctx)
	return &hs.req, nil
}

// plainTarget fills u as url.ParseRequestURI(target) would and reports
// true, when target is an origin-form path whose parse is the identity:
// only characters a path never escapes (so Path is the target's path and
// RawPath stays empty), and a query without control characters (kept raw,
// as ParseRequestURI keeps it). Anything else (a percent-encoding, an
// absolute URI, "*") is left to ParseRequestURI. FuzzPlainTarget holds the
// two equal.
func plainTarget(u *url.URL, target string) bool {
	if target == "" || target[0] != '/' {
		return false
	}
	q := len(target)
	for i := 0; i < len(target); i++ {
		c := target[i]
		if c == '?' {
			q = i
			break
		}
		if !pathChar[c] {
			return false
		}
	}
	questions := 0
	for i := q; i < len(target); i++ {
		switch c := target[i]; {
		case c < ' ' || c == 0x7f:
			return false
		case c == '?':
			questions++
		}
	}
	*u = url.URL{Path: target[:q]}
	if q < len(target) {
		u.RawQuery = target[q+1:]
		// "/p?" alone sets ForceQuery; "/p??" has the query "?".
		u.ForceQuery = u.RawQuery == "" && questions == 1
	}
	return true
}

// pathChar marks the bytes net/url never escapes in a path: letters,
// digits, "-_.~" and "$&+,/:;=@".
var pathChar = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-_.~$&+,/:;=@" {
		t[c] = true
	}
	return t
}()

// errBadTrailerKey answers a chunked request whose Trailer field announces
// a field that frames the message, as net/http does.
var errBadTrailerKey = &codec.Error{Status: 400, Detail: "Trailer announces a framing field"}

// takeTrailer gives a chunked request's trailer to r as net/http's server
// does (transfer.go, fixTrailer): the Trailer field leaves r.Header, each
// name it announces becomes a key of r.Trailer, and announcing
// Transfer-Encoding, Trailer or Content-Length is a 400. The fields that
// came in the trailer section are r.Trailer's values, never r.Header's:
// a trailer cannot change what the head said (RFC 9110 §6.5.1).
func takeTrailer(r *http.Request, x *Exchange) error {
	announced := r.Header["Trailer"]
	if len(announced) == 0 && len(x.TrailerFields) == 0 {
		return nil
	}
	t := make(http.Header, len(x.TrailerFields))
	for _, v := range announced {
		for _, name := range strings.Split(v, ",") {
			name = textproto.TrimString(name)
			if name == "" {
				continue
			}
			key := http.CanonicalHeaderKey(name)
			switch key {
			case "Transfer-Encoding", "Trailer", "Content-Length":
				return errBadTrailerKey
			}
			t[key] = nil
		}
	}
	delete(r.Header, "Trailer")
	b := x.Trailer
	for _, f := range x.TrailerFields {
		key := textproto.CanonicalMIMEHeaderKey(string(b[f.Name.Off : f.Name.Off+f.Name.Len]))
		t[key] = append(t[key], string(b[f.Value.Off:f.Value.Off+f.Value.Len]))
	}
	if len(t) > 0 {
		r.Trailer = t
	}
	return nil
}

// canonicalKey returns the canonical form of a field name (name as bytes
// and as a string sharing the head's memory). Common names come from a
// switch without allocating; others are canonicalized as net/http does.
func canonicalKey(b []byte, s string) string {
	if len(b) <= maxCommonLen {
		var buf [maxCommonLen]byte
		k := buf[:len(b)]
		upper := true
		for i, c := range b {
			if upper && 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			} else if !upper && 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			k[i] = c
			upper = c == '-'
		}
		if v := commonKey(k); v != "" {
			return v
		}
	}
	return textproto.CanonicalMIMEHeaderKey(s)
}

const maxCommonLen = 32

// commonKey returns the field name k (canonical already) as a constant
// string when it is one requests usually carry, else "". A switch, not a
// map: Go compiles it to a search by length and then by bytes, without
// hashing, and string(k) in a switch does not allocate; a map and a
// sorted list searched in place were both slower (BenchmarkCanonicalKey
// measures it). Each name is written twice so that the constant is
// returned.
func commonKey(k []byte) string {
	switch string(k) {
	case "Accept":
		return "Accept"
	case "Accept-Charset":
		return "Accept-Charset"
	case "Accept-Encoding":
		return "Accept-Encoding"
	case "Accept-Language":
		return "Accept-Language"
	case "Authorization":
		return "Authorization"
	case "Cache-Control":
		return "Cache-Control"
	case "Connection":
		return "Connection"
	case "Content-Encoding":
		return "Content-Encoding"
	case "Content-Length":
		return "Content-Length"
	case "Content-Type":
		return "Content-Type"
	case "Cookie":
		return "Cookie"
	case "Date":
		return "Date"
	case "Expect":
		return "Expect"
	case "Forwarded":
		return "Forwarded"
	case "Host":
		return "Host"
	case "If-Match":
		return "If-Match"
	case "If-Modified-Since":
		return "If-Modified-Since"
	case "If-None-Match":
		return "If-None-Match"
	case "If-Range":
		return "If-Range"
	case "If-Unmodified-Since":
		return "If-Unmodified-Since"
	case "Origin":
		return "Origin"
	case "Pragma":
		return "Pragma"
	case "Range":
		return "Range"
	case "Referer":
		return "Referer"
	case "Te":
		return "Te"
	case "Trailer":
		return "Trailer"
	case "Transfer-Encoding":
		return "Transfer-Encoding"
	case "Upgrade":
		return "Upgrade"
	case "User-Agent":
		return "User-Agent"
	case "Via":
		return "Via"
	case "X-Forwarded-For":
		return "X-Forwarded-For"
	case "X-Forwarded-Host":
		return "X-Forwarded-Host"
	case "X-Forwarded-Port":
		return "X-Forwarded-Port"
	case "X-Forwarded-Proto":
		return "X-Forwarded-Proto"
	case "X-Forwarded-By":
		return "X-Forwarded-By"
	case "X-Real-Ip":
		return "X-Real-Ip"
	case "X-Request-Id":
		return "X-Request-Id"
	case "Sec-Fetch-Mode":
		return "Sec-Fetch-Mode"
	case "Sec-Fetch-Site":
		return "Sec-Fetch-Site"
	case "Sec-Fetch-Dest":
		return "Sec-Fetch-Dest"
	case "Upgrade-Insecure-Requests":
		return "Upgrade-Insecure-Requests"
	case "Keep-Alive":
		return "Keep-Alive"
	case "Dnt":
		return "Dnt"
	case "Priority":
		return "Priority"
	}
	return ""
}

// internMethod returns the common methods without allocating.
func internMethod(m []byte) string {
	switch string(m) {
	case http.MethodGet:
		return http.MethodGet
	case http.MethodHead:
		return http.MethodHead
	case http.MethodPost:
		return http.MethodPost
	case http.MethodPut:
		return http.MethodPut
	case http.MethodDelete:
		return http.MethodDelete
	case http.MethodOptions:
		return http.MethodOptions
	case http.MethodPatch:
		return http.MethodPatch
	case http.MethodConnect:
		return http.MethodConnect
	}
	return string(m)
}

// ErrClientGone is what Output.Send returns once the client can no longer
// receive the response.
var ErrClientGone = errors.New("waitron: client connection closed")
