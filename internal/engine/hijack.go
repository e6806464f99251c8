package engine

import (
	"errors"
	"net"
	"net/http"
	"os"

	"github.com/waitron/waitron/internal/adapter"
)

// Taking a connection over (http.Hijacker)
//
// A handler that hijacks gets the socket itself, on Go's own network
// poller: on its event loop, after every byte of output gnet holds has
// reached the socket, the descriptor is duplicated and wrapped with
// net.FileConn, the input gnet has read (and a bodiless request read
// ahead, as its raw bytes) is handed over, and gnet closes its own
// descriptor — the duplicate keeps the TCP connection. From then on no
// part of the HTTP machinery (parser, timeouts, sweep, connection_limit,
// Shutdown) sees the connection, and the handler's worker leaves the count
// of threads. docs/architecture.md says why this design was chosen.

// mayHijack reports whether r's handler may take its connection over: it
// asked to upgrade the protocol (an Upgrade field, as WebSocket does) or
// is CONNECT. Nothing is read ahead behind such a request, so no byte the
// new protocol needs is parsed as HTTP.
func mayHijack(r *request) bool {
	return r.x.Framing.Upgrade || string(r.x.Head.MethodBytes()) == "CONNECT"
}

var (
	errHijackReadAhead  = errors.New("waitron: cannot hijack: the next pipelined request's body was already being read")
	errHijackNotDrained = errors.New("waitron: cannot hijack: the response so far did not reach the client within send_timeout")
)

// detached is what detach hands the worker: the socket and the input
// already read, or why not (both nil: output is still draining; retry).
type detached struct {
	nc  net.Conn
	pre []byte
	err error
}

// hijack implements turn t's Hijack (adapter.Output): it takes the
// connection out of gnet once its output has drained (the loop says so:
// detachWhenDrained), and detaches the worker from threads. head, if any,
// is a response head (and body) that leaves only with the hijack: the loop
// pushes it once nothing else stands in the hijack's way, and hands the
// socket over when it has drained too. extra is input already taken from
// gnet (pipelined requests of a batch), handed over first. Worker only.
func (w *writer) hijack(t *turn, head [][]byte, extra []byte) (net.Conn, []byte, error) {
	if w.unreachable() || w.q.fb.Load() != nil {
		release(head)
		return nil, nil, adapter.ErrClientGone
	}
	deadline := w.e.clock.stamp() + stamp(w.e.cfg.sendTimeout)
	res := make(chan detached, 1)
	if err := w.onLoop(func(c *conn) { c.detachWhenDrained(head, extra, deadline, res) },
		func() { release(head); res <- detached{err: adapter.ErrClientGone} }); err != nil {
		release(head)
		return nil, nil, adapter.ErrClientGone
	}
	var d detached
	select {
	case d = <-res:
	case <-w.gen.ended: // the loops stopped with the request queued
		return nil, nil, adapter.ErrClientGone
	}
	if d.err != nil {
		return nil, nil, d.err
	}
	t.wk.detach()
	return d.nc, d.pre, nil
}

// detachWhenDrained answers res with the detached connection once nothing
// of its output is pending (now, or when a drain watch fires), or with
// why not: the client is gone, input behind the request is already being
// read as HTTP, or the output did not drain by deadline (or went to the
// output spool, which a hijack never drains). head is pushed first, once
// nothing but the drain stands in the way. Loop only.
func (c *conn) detachWhenDrained(head [][]byte, extra []byte, deadline stamp, res chan<- detached) {
	if err := c.hijackable(); err != nil {
		release(head)
		res <- detached{err: err}
		return
	}
	for _, b := range head {
		c.write(b, true)
	}
	if d := c.detach(extra); d.nc != nil || d.err != nil {
		res <- d
		return
	}
	c.watchDrain(0, false, deadline, func(drained bool) {
		switch d := c.detach(extra); {
		case d.nc != nil || d.err != nil:
			res <- d
		case c.w.q.closed.Load() && !c.st.eof:
			res <- detached{err: adapter.ErrClientGone}
		default:
			res <- detached{err: errHijackNotDrained}
		}
	})
}

// hijackable says why the connection cannot be handed to its handler,
// if it cannot: it is gone, or input behind the request is being read as
// HTTP. Loop only.
func (c *conn) hijackable() error {
	if c.w.q.closed.Load() || c.st.eof || !c.st.busy {
		return adapter.ErrClientGone
	}
	if r := c.next; r != nil && r.body != nil || c.rd.InBody() {
		return errHijackReadAhead
	}
	return nil
}

// detach lets gnet go of the connection and returns its socket as a Go
// net.Conn with the input already read, once nothing of the response is
// still queued or buffered. Loop only.
func (c *conn) detach(extra []byte) (d detached) {
	if d.err = c.hijackable(); d.err != nil {
		return d
	}
	if c.w.q.queued.Load() != 0 || c.w.q.spool.Load() != nil {
		return d // output on its way to gnet: retry
	}
	if c.gc.OutboundBuffered() > 0 {
		if _ = c.gc.Flush(); c.gc.OutboundBuffered() > 0 {
			return d // the client has not taken it yet: retry
		}
	}
	pre := extra
	if r := c.next; r != nil {
		pre = append(pre, r.slot.buf...)
	}
	if c.w.tls == nil {
		if in, _ := c.gc.Peek(-1); len(in) > 0 {
			pre = append(pre, in...)
		}
	}
	fd, err := c.gc.Dup()
	if err != nil {
		d.err = err
		return d
	}
	f := os.NewFile(uintptr(fd), "waitron-hijacked")
	nc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		d.err = err
		return d
	}
	if t := c.w.tls; t != nil {
		// The handler gets the tls.Conn, its transport now the socket;
		// what was decrypted already comes first.
		pre = append(pre, c.tlsDetach(nc)...)
		nc = t.tc
	}
	c.st.hijack()
	c.setState(http.StateHijacked)
	c.setReason(CloseHijacked, "")
	c.next = nil
	if c.rare != nil {
		c.rare.aheadErr = nil
	}
	c.w.req.end(c.w.gen, c.reqT) // the exchange is over for the server; the handler goes on outside it
	// Synchronous, on the loop: gnet forgets the connection (OnClose sees
	// hijacked) and closes its descriptor; nc's keeps the socket open.
	_ = c.gc.EventLoop().Close(c.gc)
	d.nc, d.pre = nc, pre
	return d
}

// Hijack implements adapter.Output for a batch: the responses held back
// go out first, and the raw heads of the requests pipelined behind this
// one, not to be served now, go to the handler first. (A request that
// asked to upgrade ends its burst, so this is for plain requests.)
func (b *batch) Hijack(head [][]byte) (net.Conn, []byte, error) {
	if len(b.pending) > 0 {
		if err := b.write(false, true); err != nil {
			release(head)
			return nil, nil, err
		}
	}
	var extra []byte
	for _, r := range b.rest {
		extra = append(extra, r.slot.buf...)
	}
	nc, pre, err := b.w.hijack(b.t, head, extra)
	if err == nil {
		b.finished = true // the rest are the handler's now
	}
	return nc, pre, err
}
