package engine

import (
	"net"
	"os"
	"time"

	"github.com/waitron/waitron/internal/adapter"
	"github.com/waitron/waitron/internal/bufpool"
)

// Send, SetWriteDeadline, Hijack and SendFile make a turn the Output of
// its request (adapter.Output, adapter.FileSender): each pushes onto the
// connection's queue (queue.go). Worker only.
func (t *turn) Send(bufs [][]byte, last, keepAlive bool) error {
	_, err := t.w.push(t, piece{bufs: bufs, end: last, keepAlive: keepAlive})
	return err
}
func (t *turn) SetWriteDeadline(d time.Time)                   { t.w.SetWriteDeadline(d) }
func (t *turn) Hijack(head [][]byte) (net.Conn, []byte, error) { return t.w.hijack(t, head, nil) }
func (t *turn) Refuse(status int, detail string, head bool) (int64, error) {
	b := t.w.e.errorResponse(status, detail, head)
	return int64(len(b)), t.Send([][]byte{b}, true, false)
}
func (t *turn) SendFile(f *os.File, off, n int64) int64 {
	k, _ := t.w.push(t, piece{file: f, off: off, n: n})
	return k
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
	if fb := w.q.fb.Load(); fb != nil {
		return w.q.queued.Load() + fb.pendingBytes()
	}
	return w.q.queued.Load() + w.q.buffered.Load()
}

// waitBelowWatermark blocks turn t's worker while the connection has
// more than outbuf_high_watermark bytes pending, until the loop says the
// output drained below it (a drain watch), the client is gone or the write
// deadline passes. The first time it blocks, the worker leaves the count
// of threads (as a hijacked handler's does), so that clients reading
// slowly cannot hold every worker: another starts for the requests
// waiting, and this goroutine ends once its handler returns.
func (w *writer) waitBelowWatermark(t *turn) error {
	limit := w.e.cfg.outbufHigh
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
		if sp := w.q.spool.Load(); sp != nil {
			pending += sp.spooled()
		}
		if pending <= limit {
			return nil
		}
		if !blocked { // counted in WritesBlocked until it returns
			blocked = true
			w.e.counts.blocked.Add(1)
			defer w.e.counts.blocked.Add(-1)
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
	fb := w.q.fb.Load()
	return w.q.gone.Load() || fb != nil && fb.dead()
}

func release(bufs [][]byte) {
	for _, b := range bufs {
		bufpool.Put(b)
	}
}
