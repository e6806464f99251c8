package adapter

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
)

// PrepareHTTP2 readies a request that Go's HTTP/2 server parsed for a
// handler, as Serve readies an HTTP/1 one: the request's Info (scheme,
// server name and port, peer), the trusted-proxy rules when a proxy
// header is present, url_prefix stripped, the default Server field, and
// http.ServerContextKey holding srv. The error is a proxy header that
// the rules refuse (a 400).
func PrepareHTTP2(cfg *Config, w http.ResponseWriter, r *http.Request, srv any) (*http.Request, error) {
	scheme := cfg.URLScheme
	if r.TLS != nil && cfg.TLSScheme != "" {
		scheme = cfg.TLSScheme
	}
	info := &Info{Scheme: scheme, ServerName: cfg.ServerName, PeerAddr: r.RemoteAddr}
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(*net.TCPAddr); ok {
		info.ServerPort = strconv.Itoa(a.Port)
	}
	if cfg.Proxy != nil && hasProxyHeader(r.Header) {
		peer, _ := net.ResolveTCPAddr("tcp", r.RemoteAddr)
		if err := cfg.Proxy.Apply(r, info, peer, cfg.Log); err != nil {
			return nil, err
		}
	}
	stripPrefix(r, cfg.URLPrefix, info)
	if cfg.Ident != "" {
		w.Header().Set("Server", cfg.Ident)
	}
	ctx := context.WithValue(context.WithValue(r.Context(), infoKey{}, info), http.ServerContextKey, srv)
	return r.WithContext(ctx), nil
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
