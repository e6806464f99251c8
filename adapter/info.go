package adapter

import (
	"context"
	"net/http"
	"strings"
)

// Info is what waitress puts in the WSGI environ beyond what *http.Request
// carries. A handler reads it with RequestInfo.
type Info struct {
	// Scheme is url_scheme ("http" by default), or the scheme a trusted
	// proxy reported.
	Scheme string
	// ServerName is server_name, or the host a trusted proxy reported.
	ServerName string
	// ServerPort is the port the request reached ("" on a unix socket), or
	// the port a trusted proxy reported.
	ServerPort string
	// ScriptName is url_prefix when the request path started with it (and
	// was stripped from r.URL.Path), else "".
	ScriptName string
	// PeerAddr is the address of the socket peer, before any trusted proxy
	// header replaced r.RemoteAddr.
	PeerAddr string
}

type infoKey struct{}

// RequestInfo returns the Info of a request served by waitron, and false
// for requests from any other server.
func RequestInfo(r *http.Request) (Info, bool) {
	i, ok := r.Context().Value(infoKey{}).(*Info)
	if !ok {
		return Info{}, false
	}
	return *i, true
}

// infoCtx carries a request's Info: one allocation where Info plus
// context.WithValue would take two.
type infoCtx struct {
	context.Context
	info Info
}

func (c *infoCtx) Value(key any) any {
	if _, ok := key.(infoKey); ok {
		return &c.info
	}
	return c.Context.Value(key)
}

// stripPrefix removes url_prefix from r.URL like http.StripPrefix: a path
// equal to the prefix becomes "", one under it keeps its leading slash.
// A path outside the prefix is left alone and ScriptName stays empty
// (waitress would set SCRIPT_NAME anyway; that makes wrong URLs).
func stripPrefix(r *http.Request, prefix string, info *Info) {
	if prefix == "" {
		return
	}
	p := r.URL.Path
	if p != prefix && !strings.HasPrefix(p, prefix+"/") {
		return
	}
	r.URL.Path = p[len(prefix):]
	if rp := r.URL.RawPath; rp != "" {
		if rp == prefix || strings.HasPrefix(rp, prefix+"/") {
			r.URL.RawPath = rp[len(prefix):]
		} else {
			r.URL.RawPath = "" // the prefix was escaped differently; Path is authoritative
		}
	}
	info.ScriptName = prefix
}
