package adapter

import (
	"context"
	"net"
	"net/http"
	"strings"
)

// HTTP2State is what readying an HTTP/2 request for a handler needs of
// its own (PrepareHTTP2): the request's Info and the context carrying it,
// in one allocation with the engine's own state for the stream.
type HTTP2State struct {
	ctx  h2Ctx
	info Info
}

// h2Ctx is an HTTP/2 request's context: the stream's, with the request's
// Info and http.ServerContextKey's server answered without a context per
// value.
type h2Ctx struct {
	context.Context
	info *Info
	srv  any
}

func (c *h2Ctx) Value(key any) any {
	switch key.(type) {
	case infoKey:
		return c.info
	}
	if key == http.ServerContextKey {
		return c.srv
	}
	return c.Context.Value(key)
}

// PrepareHTTP2 readies a request that Go's HTTP/2 server parsed for a
// handler, as Serve readies an HTTP/1 one: the request's Info (scheme,
// server name and port, peer), the trusted-proxy rules when a proxy
// header is present, url_prefix stripped, the default Server field, and
// http.ServerContextKey holding srv; port is the connection's local port
// ("" for none), st holds what it makes. The error is a proxy header that
// the rules refuse (a 400).
func PrepareHTTP2(cfg *Config, st *HTTP2State, w http.ResponseWriter, r *http.Request, srv any, port string) (*http.Request, error) {
	scheme := cfg.URLScheme
	if r.TLS != nil && cfg.TLSScheme != "" {
		scheme = cfg.TLSScheme
	}
	info := &st.info
	*info = Info{Scheme: scheme, ServerName: cfg.ServerName, PeerAddr: r.RemoteAddr, ServerPort: port}
	if cfg.Proxy != nil && hasProxyHeader(r.Header) {
		peer, _ := net.ResolveTCPAddr("tcp", r.RemoteAddr)
		if err := cfg.Proxy.Apply(r, info, peer, cfg.Log); err != nil {
			return nil, err
		}
	}
	stripPrefix(r, cfg.URLPrefix, info)
	if cfg.Ident != "" {
		w.Header()["Server"] = []string{cfg.Ident}
	}
	st.ctx = h2Ctx{Context: r.Context(), info: info, srv: srv}
	return r.WithContext(&st.ctx), nil
}

// hasProxyHeader reports whether h has a field the proxy rules read or
// clear.
func hasProxyHeader(h http.Header) bool {
	for k := range h {
		if k == "Forwarded" || strings.HasPrefix(k, "X-Forwarded-") {
			return true
		}
	}
	return false
}
