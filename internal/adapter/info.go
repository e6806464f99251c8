package adapter

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Info is what waitress puts in the WSGI environ beyond what *http.Request
// carries. A handler reads it with RequestInfo; its fields are
// waitron.Info's, documented there (the root converts one to the other).
type Info struct {
	Scheme, ServerName, ServerPort, ScriptName, PeerAddr string
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

// reqCtx is a request's context: the connection's (which ends when the
// client is gone), the request's Info, and cancelled when the handler
// returns, as net/http does. It makes its Done channel only when asked and
// implements the AfterFunc method the context package uses for derived
// contexts, so a request costs one allocation here instead of four
// (WithCancel, Info, WithValue), and the connection's context does not
// keep a map of children for requests that never ask.
type reqCtx struct {
	parent context.Context
	info   Info

	mu         sync.Mutex
	done       chan struct{}
	err        error
	stopParent func() bool
	funcs      map[*func()]struct{}
}

func (c *reqCtx) Deadline() (time.Time, bool) { return c.parent.Deadline() }

func (c *reqCtx) Value(key any) any {
	if _, ok := key.(infoKey); ok {
		return &c.info
	}
	return c.parent.Value(key)
}

func (c *reqCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
		if c.err != nil {
			close(c.done)
		} else {
			c.watchParent()
		}
	}
	return c.done
}

func (c *reqCtx) Err() error {
	c.mu.Lock()
	err := c.err
	c.mu.Unlock()
	if err != nil {
		return err
	}
	return c.parent.Err()
}

// watchParent arranges for c to end with its parent. c.mu held.
func (c *reqCtx) watchParent() {
	if c.stopParent == nil {
		c.stopParent = context.AfterFunc(c.parent, func() { c.cancel(c.parent.Err()) })
	}
}

// AfterFunc runs f once c is done (the interface context.WithCancel and
// friends look for, instead of starting a goroutine per derived context).
func (c *reqCtx) AfterFunc(f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		go f()
		return func() bool { return false }
	}
	c.watchParent()
	if c.funcs == nil {
		c.funcs = map[*func()]struct{}{}
	}
	key := &f
	c.funcs[key] = struct{}{}
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		_, ok := c.funcs[key]
		delete(c.funcs, key)
		return ok
	}
}

// cancel ends c with err (the first call wins). Any goroutine.
func (c *reqCtx) cancel(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	if c.done != nil {
		close(c.done)
	}
	funcs, stop := c.funcs, c.stopParent
	c.funcs = nil
	c.mu.Unlock()
	if stop != nil {
		stop()
	}
	for f := range funcs {
		go (*f)()
	}
}

func (c *reqCtx) String() string { return "waitron request context" }

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
