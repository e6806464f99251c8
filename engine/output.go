package engine

import (
	"net"
	"os"
	"sync"
	"time"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"

	"github.com/waitron/waitron/adapter"
	"github.com/waitron/waitron/internal/bufpool"
)

// Send, SetWriteDeadline, Hijack and SendFile make a turn the Output of
// its request (adapter.Output, adapter.FileSender). Worker only.
func (t *turn) Send(bufs [][]byte, last, keepAlive bool) error {
	return t.w.send(t, bufs, last, keepAlive)
}
func (t *turn) SetWriteDeadline(d time.Time)            { t.w.SetWriteDeadline(d) }
func (t *turn) Hijack() (net.Conn, []byte, error)       { return t.w.hijack(t, nil) }
func (t *turn) SendFile(f *os.File, off, n int64) int64 { return t.w.SendFile(f, off, n) }

// send is Send for turn t. Worker only. The slices go to the socket
// from the worker itself when nothing of the connection is pending
// (tryWrite), except the end of a response that closes the connection;
// otherwise, and for what the socket did not take, to the event loop with
// AsyncWritev, whose callback recycles them and, for the last write of a
// response, finishes the request on the loop. Send then blocks
// while more than outbuf_high_watermark bytes are pending for the
// connection (waitress's backpressure), until the loop's drain watch says
// they fell below it (waitBelowWatermark).
func (w *writer) send(t *turn, bufs [][]byte, last, keepAlive bool) error {
	if last && !keepAlive {
		if d := w.wdl.Load(); d != 0 && time.Now().UnixNano() >= d {
			w.setReason(CloseSendTimeout) // the adapter closes after a write past the deadline
		}
	}
	if w.gone.Load() {
		release(bufs)
		if last {
			w.finishOnLoop(t.ticket, keepAlive)
		}
		return adapter.ErrClientGone
	}
	n := 0
	for _, b := range bufs {
		n += len(b)
	}
	w.s.counts.bytesOut.Add(uint64(n))
	// A piece of a response, or the end of one that keeps the connection,
	// goes straight to the socket when it can; the end of a response that
	// closes the connection takes the loop's path, which closes after it.
	if !last || keepAlive {
		if k, ok := w.tryWrite(bufs); ok {
			if k == n {
				release(bufs)
				if last {
					if f := w.s.hooks.directWritten; f != nil {
						f()
					}
					w.finishDirect(t)
				}
				return nil
			}
			bufs, n = rest(bufs, k), n-k // the rest takes gnet's path, in order
		}
	}
	spooled, err := w.spoolSend(t.ticket, bufs, n, last, keepAlive)
	if err != nil {
		h := t.first.x.Head
		w.s.log.Error("cannot spool response output; closing the connection", "remote", w.remoteStr,
			"method", string(h.MethodBytes()), "target", string(h.TargetBytes()), "spool_dir", w.s.tmpDir, "err", err)
		w.setReason(CloseSpoolFull) // before the loop hears the response ended
		if last {
			w.finishOnLoop(t.ticket, false)
		}
		w.close(CloseSpoolFull)
		return adapter.ErrClientGone
	}
	if !spooled {
		if err := w.sendDirect(bufs, n, last, keepAlive, t.ticket); err != nil {
			return err
		}
	}
	if last {
		// All of the response is handed over: nothing more will be
		// written, so there is nothing to hold back, and a close that
		// follows (the loop's own) must not read as the client gone.
		return nil
	}
	return w.waitBelowWatermark(t)
}

// sendDirect hands bufs to gnet. Its callback, on the loop, recycles them
// (or passes them to the fallback writer of a half-closed client) and, for
// the last bytes of a response, finishes turn ticket's request.
func (w *writer) sendDirect(bufs [][]byte, n int, last, keepAlive bool, ticket uint64) error {
	bufs = append(make([][]byte, 0, len(bufs)), bufs...) // kept until the callback: the caller's array is its own again
	w.queued.Add(int64(n))
	err := w.gc.AsyncWritev(bufs, func(gc gnet.Conn, err error) error {
		if err != nil {
			if fb := w.fb.Load(); fb != nil {
				fb.enqueue(bufs) // half-closed client: the fallback writer sends them
			} else {
				release(bufs)
			}
		} else {
			release(bufs)
			w.handed.Add(int64(n))
			w.buffered.Store(int64(gc.OutboundBuffered()))
		}
		// After buffered: a worker that sees nothing queued also sees
		// what gnet still holds (tryWrite).
		w.queued.Add(-int64(n))
		if last {
			w.atLoop(func(c *conn) { c.responseDone(ticket, keepAlive) }, func() { w.req.end(w.gen, ticket) })
		}
		return nil
	})
	if err != nil { // the engine has stopped
		w.queued.Add(-int64(n))
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
func (w *writer) tryWrite(bufs [][]byte) (int, bool) {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	if w.closed.Load() || w.queued.Load() != 0 || w.buffered.Load() != 0 ||
		w.fb.Load() != nil || w.spool.Load() != nil {
		return 0, false
	}
	if len(bufs) == 0 { // the end of a response whose bytes all went before (SendFile's)
		return 0, true
	}
	for {
		var n int
		var err error
		if len(bufs) == 1 {
			n, err = unix.Write(int(w.fd), bufs[0])
		} else {
			n, err = unix.Writev(int(w.fd), bufs)
		}
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return 0, true
		}
		w.handed.Add(int64(n))
		return n, true
	}
}

// SendFile implements adapter.FileSender, as tryWrite writes slices: from
// the worker, under wmu, only while nothing of the connection is pending
// anywhere, and only what the socket takes now; the caller sends the rest
// through Send, which queues it in order. Worker only.
func (w *writer) SendFile(f *os.File, off, n int64) int64 {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	if w.closed.Load() || w.queued.Load() != 0 || w.buffered.Load() != 0 ||
		w.fb.Load() != nil || w.spool.Load() != nil {
		return 0
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return 0
	}
	var sent int64
	_ = rc.Control(func(fd uintptr) {
		for sent < n {
			k, err := unix.Sendfile(int(w.fd), int(fd), &off, int(min(n-sent, 1<<30)))
			if k > 0 {
				sent += int64(k)
			}
			if err == unix.EINTR {
				continue
			}
			if k <= 0 || err != nil { // EAGAIN: the socket is full; the rest takes Send's path
				return
			}
		}
	})
	w.handed.Add(sent)
	w.s.counts.bytesOut.Add(uint64(sent))
	w.s.counts.fileBytes.Add(uint64(sent))
	return sent
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

// finishDirect ends turn t's keep-alive response, which tryWrite sent
// whole. The loop learns of it lazily (collect): at its next event for the
// connection, or now if it asked (awaitDone) or the connection closed
// meanwhile (onClose may have kept a half-closed client's socket waiting
// for this). Worker only.
func (w *writer) finishDirect(t *turn) {
	// The heads are no longer needed (the request holds its own copy):
	// they go back to the loop now, not when it collects, so that many
	// connections idle after a response hold none. (The loop forgets its
	// references to them when it collects.)
	var buf [maxBatch + 1]*headSlot
	slots := t.slots(&buf)
	for _, sl := range slots {
		sl.head.Reset()
	}
	w.spare.giveBack(slots, nil)
	// One clock reading for both: serve takes the request's duration
	// from it.
	at := w.s.clock.stamp()
	t.wk.doneAt = at
	w.done.Store(int64(at))
	// The loop ends the turn's flight when it collects: now if it asked,
	// if the connection closed, or if Shutdown waits for flights to end.
	if w.want.Load() || w.closed.Load() || w.s.draining.Load() {
		_ = w.onLoop(func(c *conn) { c.collect() }, nil) // an error: the loops stopped, and the connection with them
	}
}

// SetWriteDeadline implements adapter.Output. Worker only.
func (w *writer) SetWriteDeadline(t time.Time) {
	if t.IsZero() {
		w.wdl.Store(0)
	} else {
		w.wdl.Store(t.UnixNano())
	}
}

// pendingOut returns the bytes handed over but not yet on the wire: queued
// for the loop, plus gnet's outbound buffer (or the fallback writer's queue
// for a half-closed client). Any goroutine; gnet's figure may lag.
func (w *writer) pendingOut() int64 {
	if fb := w.fb.Load(); fb != nil {
		return w.queued.Load() + fb.pendingBytes()
	}
	return w.queued.Load() + w.buffered.Load()
}

// finishOnLoop completes turn ticket's response without more output (its
// connection is closed, or its output failed): the loop ends the turn's
// flight. (When the event loops have stopped, their run is over and so is
// what it had in flight.) Any goroutine.
func (w *writer) finishOnLoop(ticket uint64, keepAlive bool) {
	_ = w.onLoop(func(c *conn) { c.responseDone(ticket, keepAlive) }, func() { w.req.end(w.gen, ticket) })
}

// waitBelowWatermark blocks turn t's worker while the connection has
// more than outbuf_high_watermark bytes pending, until the loop says the
// output drained below it (a drain watch), the client is gone or the write
// deadline passes. The first time it blocks, the worker leaves the count
// of threads (as a hijacked handler's does), so that clients reading
// slowly cannot hold every worker: another starts for the requests
// waiting, and this goroutine ends once its handler returns.
func (w *writer) waitBelowWatermark(t *turn) error {
	limit := w.s.cfg.outbufHigh
	blocked := false
	var timeout <-chan time.Time
	for {
		if w.unreachable() {
			return adapter.ErrClientGone
		}
		if d := w.wdl.Load(); d != 0 {
			left := time.Duration(d - time.Now().UnixNano())
			if left <= 0 {
				w.setReason(CloseSendTimeout)
				return adapter.ErrWriteDeadline
			}
			if timeout == nil {
				tm := time.NewTimer(left)
				defer tm.Stop()
				timeout = tm.C
			}
		}
		pending := w.pendingOut()
		if sp := w.spool.Load(); sp != nil {
			pending += sp.spooled()
		}
		if pending <= limit {
			return nil
		}
		if !blocked { // counted in WritesBlocked until it returns
			blocked = true
			w.s.counts.blocked.Add(1)
			defer w.s.counts.blocked.Add(-1)
			if t != nil && !t.wk.detached {
				t.wk.detach()
			}
		}
		drained := make(chan bool, 1)
		fire := func(ok bool) { drained <- ok }
		if err := w.onLoop(func(c *conn) { c.watchDrain(limit, false, 0, fire) }, func() { fire(false) }); err != nil {
			return adapter.ErrClientGone
		}
		select {
		case <-drained:
		case <-timeout:
		case <-w.ctx.Done():
			return adapter.ErrClientGone
		case <-w.gen.ended: // the loop stopped with the watch queued
			return adapter.ErrClientGone
		}
	}
}

// unreachable reports whether no more output can reach the client: it is
// gone, or the fallback writer of its half-closed socket has failed. Any
// goroutine.
func (w *writer) unreachable() bool {
	fb := w.fb.Load()
	return w.gone.Load() || fb != nil && fb.dead()
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
	w       *writer
	fl      flight // holds Shutdown until the rest is written
	flT     uint64
	timeout time.Duration

	mu       sync.Mutex
	cond     sync.Cond
	queue    [][]byte
	pending  int64
	finished bool // no more output will come: close when the queue is empty
	broken   bool
}

func newFallback(nc net.Conn, w *writer, timeout time.Duration) *fallback {
	fb := &fallback{nc: nc, w: w, timeout: timeout}
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
	defer fb.fl.end(fb.w.gen, fb.flT)
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
			fb.w.logSocketError("socket error writing to a half-closed client", err)
			fb.w.cancel(err)
			return
		}
	}
}
