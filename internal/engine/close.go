package engine

import (
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Closing connections: the reasons, draining before the close, the
// lingering close, idle sweeps, gnet's close and half-closed clients.

// setReason records why the server closes the connection, in the one
// slot both sides use (writer.setReason): the first reason given stands,
// and with it its detail for the log. Loop only.
func (c *conn) setReason(r CloseReason, detail string) {
	if c.w.setReason(r) && detail != "" {
		c.rares().detail = detail
	}
}

// counted counts the close and logs it. Loop only, once per connection.
func (c *conn) counted(r CloseReason) {
	c.e.closes[r].Add(1)
	if c.rare != nil && c.rare.detail != "" {
		c.e.log.Debug("connection closed", "remote", c.w.remoteStr, "reason", r.String(), "detail", c.rare.detail)
	} else {
		c.e.log.Debug("connection closed", "remote", c.w.remoteStr, "reason", r.String())
	}
}

// closeMode is how a connection closes, which its reason decides.
type closeMode uint8

const (
	// closeDrain: read no further request; close once the output has
	// drained, then shut the write side and linger (closeDrained).
	closeDrain closeMode = iota
	// closeAbort: close now, dropping what is pending; the request's
	// context ends.
	closeAbort
)

// closeModes derives the way of closing from the reason, in one place
// (as nats-server's closeConnection does from its ClosedState): what the
// client asked for, a refusal the server answered and a shutdown let
// their answer leave; a client that stopped taking part, a protocol
// violation nothing is answered to and the server's own failures cut.
// The reasons gnet or the handler give (the client closed or reset, a
// hijack) are never passed to close.
var closeModes = [numCloseReasons]closeMode{
	CloseRequested:        closeDrain,
	CloseBadRequest:       closeDrain,
	CloseHeaderTimeout:    closeDrain,
	CloseBodyTimeout:      closeDrain,
	CloseOverload:         closeDrain,
	CloseShutdown:         closeDrain,
	CloseClientHalfClosed: closeDrain,
	CloseIdle:             closeAbort,
	CloseSendTimeout:      closeAbort,
	ClosePipelineOverflow: closeAbort,
	CloseProxyProtocol:    closeAbort,
	CloseInternalError:    closeAbort,
	CloseSpoolFull:        closeAbort,
	CloseServerRestart:    closeAbort,
	CloseClientClosed:     closeAbort,
	CloseClientReset:      closeAbort,
	CloseHijacked:         closeAbort,
	CloseTLSCloseNotify:   closeDrain,
	CloseTLSError:         closeAbort,
	CloseTLSRenegotiation: closeAbort,
	// The handshake's reasons close a socket gnet never had (tls.go).
	CloseTLSHandshake:        closeAbort,
	CloseTLSHandshakeTimeout: closeAbort,
}

// close closes the connection for reason (the first reason given, by
// either side, is the one counted and logged), the way closeModes says.
// It is the loop's one way to close. Loop only.
func (c *conn) close(reason CloseReason, detail string) {
	if closeModes[reason] == closeAbort {
		c.st.startClosing()
		delete(c.lc.halfClosed, c.w)
		c.setReason(reason, detail)
		if !c.w.q.closed.Load() && !c.st.eof {
			c.w.noteDelivered(c.gc) // before the handler can learn of the close
		}
		c.w.endContext(errors.New("connection closed: " + reason.String()))
		_ = c.gc.Close()
		return
	}
	if !c.st.startClosing() {
		return
	}
	c.setReason(reason, detail)
	if c.st.eof {
		delete(c.lc.halfClosed, c.w)
		if fb := c.w.q.fb.Load(); fb != nil {
			fb.finish()
		}
		c.setState(http.StateClosed) // its writer closes the socket once the rest is out
		return
	}
	if c.w.tls != nil && !c.st.busy && !c.w.q.closed.Load() && reason != CloseTLSCloseNotify {
		c.tlsCloseNotify()
	}
	r := c.rares()
	r.drainT = r.drain.begin(c.w.gen)
	c.closeWhenDrained(c.e.clock.now())
}

// closeWhenDrained closes the connection once its output has drained
// (gnet's Close drops pending output): a drain watch, with channel_timeout
// from start as its deadline. Then our write side is shut down and input
// is discarded briefly, so a client still sending does not turn the close
// into a reset that destroys the response (net/http's closeWriteAndWait).
// Loop only.
func (c *conn) closeWhenDrained(start time.Time) {
	c.watchDrain(0, false, stampOf(start)+stamp(c.drainTimeout()), c.closeDrained)
}

// closeDrained closes the connection whose output drained, or did not
// by the deadline (drained false; or the connection is gone). Loop only.
func (c *conn) closeDrained(drained bool) {
	r := c.rare // made by close
	r.drain.end(c.w.gen, r.drainT)
	if c.w.q.closed.Load() {
		return
	}
	if !drained {
		c.e.log.Warn("closing connection with unsent response bytes: the client stopped reading",
			"remote", c.w.remoteStr, "unsent", c.gc.OutboundBuffered())
		_ = c.gc.Close()
		return
	}
	if c.peerCloses && c.inBuffered() == 0 {
		// The client asked to close after this response and sent nothing
		// more: no unread input can turn the close into a reset, so there
		// is nothing to linger for.
		_ = c.gc.Close()
		return
	}
	if err := unix.Shutdown(c.gc.Fd(), unix.SHUT_WR); err != nil {
		_ = c.gc.Close()
		return
	}
	c.st.linger()
	c.discardInput()
	// Input is discarded (onTraffic) until lingerTime has passed: a drain
	// watch that is never met ends the linger at its deadline, or at the
	// client's own close.
	c.watchDrain(-1, false, c.now()+stamp(lingerTime), func(bool) { _ = c.gc.Close() })
}

// close is the worker side's way to close: it records reason (first
// wins) and closes the connection now, dropping what is pending — every
// reason a worker gives is of that kind (closeModes) — unless gnet has
// already stopped (its queues are gone then; the connection too). Any
// goroutine.
func (w *writer) close(reason CloseReason) {
	w.setReason(reason)
	if !w.e.loopsGone.Load() {
		_ = w.gc.Close()
	}
}

// lingerTime is how long input is discarded after our side shut down.
const lingerTime = 500 * time.Millisecond

func (c *conn) drainTimeout() time.Duration {
	return c.e.cfg.idleTimeout
}

// sweep closes the connection if it has been idle for channel_timeout:
// no request in flight and no bytes moving either way (output draining
// to a slow reader counts as movement). Loop only.
func (c *conn) sweep(now time.Time, idle time.Duration) {
	if !c.e.hooks.noTickCollect {
		c.collect()
	}
	if c.w.q.closed.Load() || c.st.busy || c.st.eof {
		return
	}
	if c.st.parked() {
		if c.rare.parkedAt.since(now) >= idle {
			c.unparkRemove()
			c.st.refuse()
			c.refuseOverload("No connection slot became free in time (connection_limit, channel_timeout)")
		}
		return
	}
	if out := int32(c.gc.OutboundBuffered()); out != c.outSeen {
		c.outSeen, c.active = out, stampOf(now)
		return
	}
	if c.active.since(now) < idle {
		return
	}
	c.e.log.Debug("closing idle connection (channel_timeout)", "remote", c.w.remoteStr,
		"unsent", c.gc.OutboundBuffered())
	c.close(CloseIdle, "")
}

// onClose runs when gnet closes the connection: the client closed or reset
// it, or we did. A client that only half-closed (EOF) while its request is
// served still gets its response: the socket is duplicated before gnet
// closes it and the rest of the output goes through a fallback writer.
func (c *conn) onClose(err error) {
	defer c.guard()
	c.w.q.mu.Lock() // a worker writing to the socket finishes before gnet closes it
	c.w.q.closed.Store(true)
	c.w.q.mu.Unlock()
	if c.st.hijacked() {
		// detach let the socket go: its handler has it now, and its
		// context is not ours to end.
		c.w.q.gone.Store(true)
		c.endWatches()
		c.lc.unwatch(c)
		if !c.h2 { // an HTTP/2 connection goes on, and is counted when it ends
			c.counted(CloseHijacked)
		}
		return
	}
	c.collect()
	if c.w.gen.stopped.Load() {
		// gnet is closing every connection as its loops stop on their
		// own: the server's doing, not the client's.
		c.setReason(CloseServerRestart, "")
	}
	if c.st.busy && !c.st.closing() && errors.Is(err, io.EOF) {
		// As net/http: the client's FIN ends the request's context (a Go
		// client that cancels its request sends one), and what the
		// handler still writes goes out while the socket takes it.
		c.w.endContext(errClientClosed)
		if c.adoptHalfClosed() {
			return
		}
	}
	// Only now, with the fallback writer's fate known: a worker that saw
	// closed before it was stored must not take the client for gone and
	// end its response beside the writer (and an output spool feeding it).
	// Before it, what the client took: the access log's figure for a
	// response cut short (gnet closes the descriptor after OnClose).
	c.w.noteDelivered(c.gc)
	c.w.q.gone.Store(true)
	c.setState(http.StateClosed)
	c.endWatches() // the waiters learn the connection is gone
	c.lc.unwatch(c)
	if sp := c.w.q.spool.Load(); sp != nil {
		sp.poke() // its feeder may be waiting for output that will never come
	}
	cause := errClientClosed
	if err != nil && !errors.Is(err, io.EOF) {
		cause = err
		c.w.logSocketError("socket error", err)
	}
	c.w.endContext(cause)
	c.dropBody()
	if c.next != nil && c.next.body != nil {
		c.next.body.abort()
	}
	c.next = nil
	c.counted(c.closeReason(err))
}

// dropBody removes the body being read, with its spool file. Loop only.
func (c *conn) dropBody() {
	if c.body != nil {
		c.body.abort()
		c.body = nil
	}
}

// errClientClosed is the cause of a request context ended by the client.
var errClientClosed = errors.New("client closed the connection")

// logSocketError logs a socket-level failure as a warning, or at debug
// level with log_socket_errors off.
func (w *writer) logSocketError(msg string, err error) {
	if w.e.cfg.logSocketErrs {
		w.e.log.Warn(msg, "remote", w.remoteStr, "err", err)
	} else {
		w.e.log.Debug(msg, "remote", w.remoteStr, "err", err)
	}
}

// adoptHalfClosed keeps the socket of a half-closed client open past gnet's
// close: it flushes what gnet holds, saves unread input, and starts a
// fallback writer on a duplicate of the descriptor. It reports false when
// that is impossible (output that cannot be flushed would leave a gap).
func (c *conn) adoptHalfClosed() bool {
	if c.gc.OutboundBuffered() > 0 {
		_ = c.gc.Flush()
		if c.gc.OutboundBuffered() > 0 {
			c.setReason(CloseClientHalfClosed, "a response could not be flushed")
			return false
		}
	}
	fd, err := c.gc.Dup()
	if err != nil {
		return false
	}
	f := os.NewFile(uintptr(fd), "waitron-half-closed")
	nc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return false
	}
	if c.w.tls != nil {
		if in := c.tlsSave(); len(in) > 0 {
			c.rares().saved = in
		}
	} else if in, _ := c.gc.Peek(-1); len(in) > 0 {
		c.rares().saved = append([]byte(nil), in...)
	}
	c.st.halfClose()
	if c.lc.halfClosed == nil {
		c.lc.halfClosed = make(map[*writer]*conn)
	}
	c.lc.halfClosed[c.w] = c
	fb := newFallback(nc, c.w, c.e.cfg.sendTimeout)
	fb.flT = fb.fl.begin(c.w.gen)
	c.w.q.fb.Store(fb)
	go fb.run()
	return true
}
