package engine

import (
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"

	"github.com/waitron/waitron/internal/adapter"
	"github.com/waitron/waitron/internal/bufpool"
)

// The output queue
//
// Everything a connection sends goes through its one queue, in order: a
// response's head and body from its worker (turn.Send), a section of a
// file (turn.SendFile), the head of a 101 that a hijack completes
// (turn.Hijack), and what the loop answers itself, an error response or a
// 100 Continue (conn.write). route, one function, decides where each push
// goes next:
//
//   - toSocket: nothing of the connection is pending anywhere, so the
//     worker writes to the socket itself, now, as much as it takes;
//   - toGnet: gnet's outbound buffer, which the loop writes as the client
//     reads (AsyncWritev from off the loop, Write on it);
//   - toSpool: past outbuf_overflow, a temporary file, whose feeder hands
//     it to gnet as the client drains (outspool.go);
//   - toFallback: a client that half-closed: the writer that carries the
//     output on after gnet has let the socket go (fallback.go);
//   - toNowhere: the client is gone; the bytes are dropped.
//
// The end of a response travels in the queue behind its last byte. When
// it leaves the queue (written, handed to gnet, or dropped), ended records
// it, and the loop completes the response in one place, collect, which
// alone decides what follows: the next request, keep-alive, or the close.
// While more than outbuf_high_watermark bytes are pending, a worker's push
// waits for the loop's drained event (waitBelowWatermark).
//
// On a TLS connection push encrypts: under the seal lock the slices
// become records and are routed before it is let go, so every backend
// carries ciphertext in record order, and a file section is refused (push
// returns 0), so the adapter reads it and pushes it as slices (tls.go).

// outQueue is the state of a connection's output queue, which the worker,
// the loop and the backends' goroutines share: atomic, or under mu.
type outQueue struct {
	mu       sync.Mutex   // held by a worker's write to the socket, and by onClose to mark it closed
	closed   atomic.Bool  // gnet has closed the connection
	gone     atomic.Bool  // closed, and no fallback writer carries the output on: pushes go nowhere
	queued   atomic.Int64 // bytes handed to AsyncWritev whose callback has not run
	buffered atomic.Int64 // gnet's outbound buffer, as the loop last saw it
	handed   atomic.Int64 // bytes that left the queue for the socket or gnet's buffer
	spool    atomic.Pointer[outSpool]
	fb       atomic.Pointer[fallback]

	// The end of the turn's response once it has left the queue, for the
	// loop to complete (ended, collect): when it left (a stamp) << 1, | 1
	// if the connection stays open; 0: none waiting. One turn is under way
	// at a time, and it pushes its end once (turn.ended), so the end
	// recorded is the current turn's.
	end  atomic.Int64
	want atomic.Bool // the loop waits for the end: whoever records it wakes the loop
}

// piece is what one push carries: pooled slices, which the queue owns
// once pushed (not the slice holding them), or a section of a file, of
// which only what the socket takes now is sent (sendfile); and whether the
// response ends with it.
type piece struct {
	bufs      [][]byte
	file      *os.File
	off, n    int64 // the file section
	end       bool
	keepAlive bool // at the end: the connection may serve another request
}

func (p *piece) len() int64 {
	if p.file != nil {
		return p.n
	}
	n := 0
	for _, b := range p.bufs {
		n += len(b)
	}
	return int64(n)
}

// dest is where route sends a push.
type dest uint8

const (
	toSocket dest = iota
	toGnet
	toSpool
	toFallback
	toNowhere
)

// origin is who pushes.
type origin uint8

const (
	fromWorker     origin = iota // a worker: it may write to the socket itself
	fromWorkerRest               // the rest of a worker's push, which the socket did not take
	fromLoop                     // the loop's own answers: never the socket from a worker's goroutine, never a file
)

// route decides where n bytes pushed from origin go next. No push
// overtakes an earlier one: the socket is written directly only while
// nothing is pending anywhere; once a spool exists it takes every byte
// until it is empty again; the fallback writer takes a worker's bytes only
// once none are on their way to gnet (whose callbacks hand it those, in
// order). A worker calls it holding q.mu. Any goroutine.
func (w *writer) route(n int64, from origin) dest {
	q := &w.q
	switch {
	case q.gone.Load():
		return toNowhere
	case q.spool.Load() != nil:
		return toSpool
	case q.fb.Load() != nil:
		if from == fromLoop || q.queued.Load() == 0 {
			return toFallback
		}
		return toGnet
	case from == fromLoop:
		return toGnet
	case from == fromWorker && !q.closed.Load() && q.queued.Load() == 0 && q.buffered.Load() == 0:
		return toSocket
	case n > 0 && w.pendingOut()+n > w.e.cfg.outbufOverflow:
		return toSpool
	}
	return toGnet
}

// push sends p, a piece of turn t's response, where route says, and
// returns what was sent of a file section (the rest is the caller's, to
// push as slices). Unless p ends the response, it then waits while more
// than outbuf_high_watermark bytes are pending (waitBelowWatermark). It
// returns adapter.ErrClientGone once the client cannot receive. Worker
// only.
func (w *writer) push(t *turn, p piece) (int64, error) {
	if p.end {
		if t.ended { // a second end (a panic after the first): nothing more of this turn
			p.end = false
		} else {
			t.ended = true
			if !p.keepAlive {
				if d := w.wdl.Load(); d != 0 && time.Now().UnixNano() >= d {
					w.setReason(CloseSendTimeout) // the adapter closes after a write past the deadline
				}
			}
			t.giveBackHeads()
		}
	}
	if tc := w.tls; tc != nil {
		if p.file != nil {
			return 0, nil // none sent: the adapter reads the file and pushes it as slices
		}
		tc.seal.Lock()
		p.bufs = tc.sealed(p.bufs)
		_, wait, err := w.send(t, p)
		tc.seal.Unlock()
		if !wait {
			return 0, err
		}
		return 0, w.waitBelowWatermark(t)
	}
	k, wait, err := w.send(t, p)
	if !wait {
		return k, err
	}
	return 0, w.waitBelowWatermark(t)
}

// send routes p, as push says; wait: the caller is to wait while the
// output is above outbuf_high_watermark. On a TLS connection the caller
// holds the seal lock. Worker only.
func (w *writer) send(t *turn, p piece) (sent int64, wait bool, err error) {
	n := p.len()
	w.q.mu.Lock()
	to := w.route(n, fromWorker)
	if to == toSocket {
		k := w.writeNow(&p)
		whole := p.file == nil && k == n
		if whole && p.end {
			// Recorded before onClose can mark the connection closed (it
			// takes q.mu), so its collect finds the end of a response
			// that reached the socket.
			at := w.e.clock.stamp() // one reading: serve takes the request's duration from it
			t.wk.doneAt = at
			w.q.record(p.keepAlive, at)
		}
		w.q.mu.Unlock()
		if p.file != nil {
			w.e.counts.bytesOut.Add(uint64(k))
			w.e.counts.fileBytes.Add(uint64(k))
			return k, false, nil
		}
		w.e.counts.bytesOut.Add(uint64(n))
		if whole {
			release(p.bufs)
			if p.end {
				w.deliver(t.ticket, p.keepAlive, false)
			}
			return 0, false, nil // nothing is pending: no need to wait
		}
		p.bufs, n = rest(p.bufs, int(k)), n-k
		to = w.route(n, fromWorkerRest)
	} else {
		w.q.mu.Unlock()
		if p.file != nil {
			return 0, false, nil
		}
		w.e.counts.bytesOut.Add(uint64(n))
	}
	switch to {
	case toNowhere:
		release(p.bufs)
		if p.end {
			w.ended(t.ticket, p.keepAlive, w.e.clock.stamp(), false)
		}
		return 0, false, adapter.ErrClientGone
	case toSpool:
		spooled, err := w.spoolAppend(t.ticket, p.bufs, n, p.end, p.keepAlive)
		if err != nil {
			h := t.first.x.Head
			w.e.log.Error("cannot spool response output; closing the connection", "remote", w.remoteStr,
				"method", string(h.MethodBytes()), "target", string(h.TargetBytes()), "spool_dir", w.e.tmpDir, "err", err)
			w.setReason(CloseSpoolFull) // before the loop hears the response ended
			if p.end {
				w.ended(t.ticket, false, w.e.clock.stamp(), false)
			}
			w.close(CloseSpoolFull)
			return 0, false, adapter.ErrClientGone
		}
		if !spooled { // no spool file: the bytes stay in memory
			if err := w.toGnet(p.bufs, n, t.ticket, p.end, p.keepAlive); err != nil {
				return 0, false, err
			}
		}
	case toFallback:
		w.q.fb.Load().enqueue(p.bufs)
		if p.end {
			w.ended(t.ticket, p.keepAlive, w.e.clock.stamp(), false)
		}
	default:
		if err := w.toGnet(p.bufs, n, t.ticket, p.end, p.keepAlive); err != nil {
			return 0, false, err
		}
	}
	if p.end {
		// All of the response is handed over: nothing more will be
		// written, so there is nothing to hold back, and a close that
		// follows (the loop's own) must not read as the client gone.
		return 0, false, nil
	}
	return 0, true, nil
}

// writeNow writes p to the socket from the worker itself and returns how
// much the socket took; on EAGAIN or an error the rest goes gnet's way
// (which then meets and handles the error). Worker only, holding q.mu,
// which keeps onClose, and so gnet's close of the descriptor, from running
// meanwhile.
func (w *writer) writeNow(p *piece) int64 {
	var sent int64
	switch {
	case p.file != nil:
		rc, err := p.file.SyscallConn()
		if err != nil {
			return 0
		}
		off := p.off
		_ = rc.Control(func(fd uintptr) {
			for sent < p.n {
				k, err := unix.Sendfile(int(w.fd), int(fd), &off, int(min(p.n-sent, 1<<30)))
				if k > 0 {
					sent += int64(k)
				}
				if err == unix.EINTR {
					continue
				}
				if k <= 0 || err != nil { // EAGAIN: the socket is full
					return
				}
			}
		})
	case len(p.bufs) == 0: // the end of a response whose bytes all went before
	default:
		for {
			var k int
			var err error
			if len(p.bufs) == 1 {
				k, err = unix.Write(int(w.fd), p.bufs[0])
			} else {
				k, err = unix.Writev(int(w.fd), p.bufs)
			}
			if err == unix.EINTR {
				continue
			}
			if err == nil {
				sent = int64(k)
			}
			break
		}
	}
	w.q.handed.Add(sent)
	return sent
}

// toGnet hands bufs to gnet from off the loop (AsyncWritev). Its callback,
// on the loop, recycles them (or passes them to the fallback writer of a
// client that half-closed meanwhile) and, when they end turn ticket's
// response, records the end there. Any goroutine but the loop.
func (w *writer) toGnet(bufs [][]byte, n int64, ticket uint64, end, keepAlive bool) error {
	bufs = append(make([][]byte, 0, len(bufs)), bufs...) // kept until the callback: the caller's array is its own again
	w.q.queued.Add(n)
	err := w.gc.AsyncWritev(bufs, func(gc gnet.Conn, err error) error {
		if err != nil {
			if fb := w.q.fb.Load(); fb != nil {
				fb.enqueue(bufs)
			} else {
				release(bufs)
			}
		} else {
			release(bufs)
			w.q.handed.Add(n)
			w.q.buffered.Store(int64(gc.OutboundBuffered()))
		}
		// After buffered: a worker that sees nothing queued also sees
		// what gnet still holds (route).
		w.q.queued.Add(-n)
		if end {
			w.ended(ticket, keepAlive, w.e.clock.stamp(), true)
		}
		return nil
	})
	if err != nil { // the engine has stopped
		w.q.queued.Add(-n)
		release(bufs)
		return adapter.ErrClientGone
	}
	return nil
}

// ended records that the end of turn ticket's response has left the
// queue (keepAlive: the connection may serve another request) at at, and
// has the loop complete it (collect): now, when called on the loop (a
// gnet callback); by a task for the loop when the loop asked for it, the
// connection closes after it, or Shutdown waits for it; and otherwise —
// a keep-alive response its worker wrote itself — at the loop's next
// event for the connection, so that a client that waits for each response
// costs no loop wake-up. Once the connection is gone, the flight ends
// without it. Any goroutine.
func (w *writer) ended(ticket uint64, keepAlive bool, at stamp, onLoop bool) {
	w.q.record(keepAlive, at)
	w.deliver(ticket, keepAlive, onLoop)
}

// record keeps the end of the turn's response, which left the queue at
// at, for the loop's collect. Any goroutine.
func (q *outQueue) record(keepAlive bool, at stamp) {
	e := int64(at) << 1
	if keepAlive {
		e |= 1
	}
	q.end.Store(e)
}

// deliver has the loop collect the end just recorded, as ended says.
// Any goroutine.
func (w *writer) deliver(ticket uint64, keepAlive bool, onLoop bool) {
	q := &w.q
	gone := func() { w.req.end(w.gen, ticket) }
	switch {
	case onLoop:
		w.atLoop(func(c *conn) { c.collect() }, gone)
	case keepAlive && !q.want.Load() && !q.closed.Load() && !w.e.draining.Load():
	default:
		_ = w.onLoop(func(c *conn) { c.collect() }, gone) // an error: the loops stopped, and the connection's flight with them
	}
}

// collect completes the response whose end has left the queue (ended),
// if one has: the turn's flight ends, and the connection moves on
// (afterResponse). It is the one place a response completes, and reports
// whether one did. Loop only.
func (c *conn) collect() bool {
	q := &c.w.q
	if q.end.Load() == 0 {
		return false
	}
	e := q.end.Swap(0)
	q.want.Store(false)
	if !c.st.busy {
		return false // a turn the loop has already let go (a hijack)
	}
	c.w.req.end(c.w.gen, c.reqT)
	c.afterResponse(e&1 == 1, stamp(e>>1))
	return true
}

// awaitDone, while a request is with a worker and more input is waiting
// (read ahead, a body, a protocol error to answer, pipelined bytes), asks
// for the response's end at once (want), or collects one that came
// meanwhile. Both sides store, then load (sequentially consistent
// atomics), so at least one of them sees the other. Loop only.
func (c *conn) awaitDone() {
	for c.st.busy && !c.w.q.closed.Load() && (c.next != nil || c.ahead() != nil || c.st.closing() ||
		c.rd.InBody() || c.inBuffered() > 0) {
		c.w.q.want.Store(true)
		if !c.collect() {
			return
		}
	}
}

// write pushes b, an answer of the loop's own (an error response, a 100
// Continue, a 101's head), onto the queue, encrypted on a TLS connection,
// and recycles it to bufpool when recycle is set. Loop only.
func (c *conn) write(b []byte, recycle bool) {
	if c.w.tls != nil {
		c.tlsWrite(b)
		if recycle {
			bufpool.Put(b)
		}
		return
	}
	c.writeRaw(b, recycle)
}

// writeRaw is write for bytes as they go on the wire. Loop only.
func (c *conn) writeRaw(b []byte, recycle bool) {
	n := int64(len(b))
	switch c.w.route(n, fromLoop) {
	case toGnet:
		c.e.counts.bytesOut.Add(uint64(n))
		c.w.q.handed.Add(n)
		_, _ = c.gc.Write(b)
	case toFallback:
		c.w.q.fb.Load().enqueue([][]byte{append(bufpool.GetSmall()[:0], b...)})
	case toSpool: // a spool still draining; on the loop only by mistake, but in order
		if _, err := c.w.spoolAppend(0, [][]byte{append(bufpool.GetSmall()[:0], b...)}, n, false, false); err != nil {
			c.close(CloseSpoolFull, "")
		}
	}
	if recycle {
		bufpool.Put(b)
	}
}

// giveBackHeads gives the head slots of the turn's requests back to the
// loop as the response ends: the requests hold copies of what they need,
// and a connection idle after its response holds none. Worker only.
func (t *turn) giveBackHeads() {
	var buf [maxBatch + 1]*headSlot
	slots := t.slots(&buf)
	for _, sl := range slots {
		sl.head.Reset()
	}
	t.w.spare.giveBack(slots, nil)
}
