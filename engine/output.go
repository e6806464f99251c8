package engine

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"

	"github.com/waitron/waitron/adapter"
	"github.com/waitron/waitron/internal/bufpool"
)

// Send implements adapter.Output. Worker only. The slices go to the socket
// from the worker itself when nothing of the connection is pending
// (tryWrite), except the end of a response that closes the connection;
// otherwise, and for what the socket did not take, to the event loop with
// AsyncWritev, whose callback recycles them and, for the last write of a
// response, finishes the request on the loop. Send then blocks
// while more than outbuf_high_watermark bytes are pending for the
// connection (waitress's backpressure), polling gnet's outbound buffer
// because gnet has no drained event.
func (c *conn) Send(bufs [][]byte, last, keepAlive bool) error {
	if last && !keepAlive {
		if d := c.wdl.Load(); d != 0 && time.Now().UnixNano() >= d {
			c.noteReason(CloseSendTimeout) // the adapter closes after a write past the deadline
		}
	}
	if c.gone.Load() {
		release(bufs)
		if last {
			c.finishOnLoop(keepAlive)
		}
		return adapter.ErrClientGone
	}
	n := 0
	for _, b := range bufs {
		n += len(b)
	}
	// A piece of a response, or the end of one that keeps the connection,
	// goes straight to the socket when it can; the end of a response that
	// closes the connection takes the loop's path, which closes after it.
	if !last || keepAlive {
		if k, ok := c.tryWrite(bufs); ok {
			if k == n {
				release(bufs)
				if last {
					if f := c.s.directWritten.Load(); f != nil {
						(*f)()
					}
					c.finishDirect()
				}
				return nil
			}
			bufs, n = rest(bufs, k), n-k // the rest takes gnet's path, in order
		}
	}
	spooled, err := c.spoolSend(bufs, n, last, keepAlive)
	if err != nil {
		c.s.log.Error("cannot spool response output; closing the connection", "err", err)
		c.noteReason(CloseInternalError)
		if last {
			c.finishOnLoop(false)
		}
		c.closeAsync()
		return adapter.ErrClientGone
	}
	if !spooled {
		if err := c.sendDirect(bufs, n, last, keepAlive); err != nil {
			return err
		}
	}
	return c.waitBelowWatermark()
}

// sendDirect hands bufs to gnet. Its callback, on the loop, recycles them
// (or passes them to the fallback writer of a half-closed client) and, for
// the last bytes of a response, finishes the request.
func (c *conn) sendDirect(bufs [][]byte, n int, last, keepAlive bool) error {
	c.queued.Add(int64(n))
	err := c.gc.AsyncWritev(bufs, func(gc gnet.Conn, err error) error {
		if err != nil {
			if fb := c.fb.Load(); fb != nil {
				fb.enqueue(bufs) // half-closed client: the fallback writer sends them
			} else {
				release(bufs)
			}
		} else {
			release(bufs)
			c.handed.Add(int64(n))
			c.buffered.Store(int64(gc.OutboundBuffered()))
		}
		// After buffered: a worker that sees nothing queued also sees
		// what gnet still holds (tryWrite).
		c.queued.Add(-int64(n))
		if last {
			c.responseDone(keepAlive)
		}
		return nil
	})
	if err != nil { // the engine has stopped
		c.queued.Add(-int64(n))
		release(bufs)
		return adapter.ErrClientGone
	}
	return nil
}

// tryWrite writes bufs to the socket from the worker itself, when nothing
// of the connection is waiting in gnet, queued for the loop, spooled or
// with a fallback writer (so the order holds), and the socket is open:
// wmu keeps onClose, and so gnet's close of the descriptor, from running
// during the write. It reports whether it tried, and how many bytes the
// socket took; the rest (all of it on EAGAIN or an error, which gnet then
// meets and handles) goes gnet's way. Worker only.
func (c *conn) tryWrite(bufs [][]byte) (int, bool) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed.Load() || c.queued.Load() != 0 || c.buffered.Load() != 0 ||
		c.fb.Load() != nil || c.spool.Load() != nil {
		return 0, false
	}
	for {
		var n int
		var err error
		if len(bufs) == 1 {
			n, err = unix.Write(int(c.fd), bufs[0])
		} else {
			n, err = unix.Writev(int(c.fd), bufs)
		}
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return 0, true
		}
		c.handed.Add(int64(n))
		return n, true
	}
}

// rest returns what of bufs follows the first k bytes.
func rest(bufs [][]byte, k int) [][]byte {
	for len(bufs) > 0 && k >= len(bufs[0]) {
		k -= len(bufs[0])
		bufpool.Put(bufs[0])
		bufs = bufs[1:]
	}
	if len(bufs) > 0 && k > 0 {
		// Not recyclable any more (bufpool keeps whole buffers only); the
		// collector takes it once written.
		bufs[0] = bufs[0][k:]
	}
	return bufs
}

// finishDirect ends a keep-alive response tryWrite sent whole. The loop
// learns of it lazily (collect): at its next event for the connection, or
// now if it asked (awaitDone) or the connection closed meanwhile (onClose
// may have kept a half-closed client's socket waiting for this). Worker
// only.
func (c *conn) finishDirect() {
	// Last, so Shutdown sees the request in flight until done is set.
	defer c.gen.inflight.Add(-1)
	// The heads are no longer needed (the request holds its own copy):
	// they go back to the pool now, not when the loop collects, so that
	// many connections idle after a response hold none.
	for _, sl := range c.serving {
		sl.head.Reset()
		slotPool.Put(sl)
	}
	c.done.Store(int64(nowStamp()))
	if c.want.Load() || c.closed.Load() {
		if err := c.gc.EventLoop().Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
			c.collect()
			return nil
		})); err != nil {
			return // the engine is gone, and the connection with it
		}
	}
}

// SetWriteDeadline implements adapter.Output. Worker only.
func (c *conn) SetWriteDeadline(t time.Time) {
	if t.IsZero() {
		c.wdl.Store(0)
	} else {
		c.wdl.Store(t.UnixNano())
	}
}

// pendingOut returns the bytes handed over but not yet on the wire: queued
// for the loop, plus gnet's outbound buffer (or the fallback writer's queue
// for a half-closed client). Any goroutine; gnet's figure may lag.
func (c *conn) pendingOut() int64 {
	if fb := c.fb.Load(); fb != nil {
		return c.queued.Load() + fb.pendingBytes()
	}
	return c.queued.Load() + c.buffered.Load()
}

// finishOnLoop completes a response whose connection is already closed.
func (c *conn) finishOnLoop(keepAlive bool) {
	if err := c.gc.EventLoop().Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
		c.responseDone(keepAlive)
		return nil
	})); err != nil {
		c.gen.inflight.Add(-1) // the engine is gone: nothing else will finish it
	}
}

// waitBelowWatermark blocks the worker while the connection has more than
// outbuf_high_watermark bytes pending, or until the client is gone.
func (c *conn) waitBelowWatermark() error {
	limit := int64(c.s.opts.OutbufHighWatermark)
	delay := time.Millisecond
	for {
		if c.unreachable() {
			return adapter.ErrClientGone
		}
		if d := c.wdl.Load(); d != 0 && time.Now().UnixNano() >= d {
			c.noteReason(CloseSendTimeout)
			return adapter.ErrWriteDeadline
		}
		pending := c.pendingOut()
		if sp := c.spool.Load(); sp != nil {
			pending += sp.spooled()
		}
		if pending <= limit {
			return nil
		}
		// Refresh gnet's figure on the loop, then back off.
		refreshed := make(chan struct{})
		if err := c.gc.EventLoop().Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
			if !c.closed.Load() {
				c.buffered.Store(int64(c.gc.OutboundBuffered()))
			}
			close(refreshed)
			return nil
		})); err != nil {
			return adapter.ErrClientGone
		}
		select {
		case <-refreshed:
		case <-c.ctx.Done():
			return adapter.ErrClientGone
		}
		time.Sleep(delay)
		delay = min(2*delay, 20*time.Millisecond)
	}
}

// unreachable reports whether no more output can reach the client: it is
// gone, or the fallback writer of its half-closed socket has failed. Any
// goroutine.
func (c *conn) unreachable() bool {
	fb := c.fb.Load()
	return c.gone.Load() || fb != nil && fb.dead()
}

func release(bufs [][]byte) {
	for _, b := range bufs {
		bufpool.Put(b)
	}
}

// fallback writes the rest of the output of a client that half-closed its
// side, on a duplicate of the socket that gnet has already closed. It keeps
// gnet's order: the loop enqueues in the order of AsyncWritev callbacks.
type fallback struct {
	nc      net.Conn
	c       *conn
	timeout time.Duration

	mu       sync.Mutex
	cond     sync.Cond
	queue    [][]byte
	pending  int64
	finished bool // no more output will come: close when the queue is empty
	broken   bool
}

func newFallback(nc net.Conn, c *conn, timeout time.Duration) *fallback {
	fb := &fallback{nc: nc, c: c, timeout: timeout}
	fb.cond.L = &fb.mu
	return fb
}

// enqueue takes ownership of bufs. Loop only (keeps the order).
func (fb *fallback) enqueue(bufs [][]byte) {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	if fb.broken {
		release(bufs)
		return
	}
	for _, b := range bufs {
		fb.queue = append(fb.queue, b)
		fb.pending += int64(len(b))
	}
	fb.cond.Signal()
}

// finish closes the connection once everything queued is written.
func (fb *fallback) finish() {
	fb.mu.Lock()
	fb.finished = true
	fb.cond.Signal()
	fb.mu.Unlock()
}

func (fb *fallback) pendingBytes() int64 {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	return fb.pending
}

func (fb *fallback) dead() bool {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	return fb.broken
}

func (fb *fallback) run() {
	defer fb.c.gen.inflight.Add(-1)
	defer fb.nc.Close()
	fb.mu.Lock()
	for {
		for len(fb.queue) == 0 && !fb.finished {
			fb.cond.Wait()
		}
		if len(fb.queue) == 0 {
			fb.mu.Unlock()
			_ = fb.nc.(interface{ CloseWrite() error }).CloseWrite()
			return
		}
		batch := fb.queue
		fb.queue = nil
		fb.mu.Unlock()
		n := int64(0)
		for _, b := range batch {
			n += int64(len(b))
		}
		_ = fb.nc.SetWriteDeadline(time.Now().Add(fb.timeout))
		bufs := net.Buffers(append([][]byte(nil), batch...))
		_, err := bufs.WriteTo(fb.nc)
		release(batch)
		fb.mu.Lock()
		fb.pending -= n
		if err != nil {
			fb.broken = true
			release(fb.queue)
			fb.queue, fb.pending = nil, 0
			fb.mu.Unlock()
			fb.c.logSocketError("socket error writing to a half-closed client", err)
			fb.c.cancel(err)
			return
		}
	}
}
