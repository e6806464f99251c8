package engine

import (
	"os"
	"sync"

	"github.com/waitron/waitron/internal/bufpool"
)

// outSpool holds response bytes of one connection in a temporary file once
// more than outbuf_overflow bytes are pending (waitress's output overflow).
// The worker appends; a feeder goroutine hands the file's contents to gnet
// as the client drains, so memory per connection stays near
// outbuf_overflow. While a spool exists, every byte of the connection's
// output — the end of the response included — goes through it, in order.
type outSpool struct {
	w      *writer
	file   *os.File
	ticket uint64 // the turn whose response it carries

	mu        sync.Mutex
	wOff      int64 // bytes appended
	rOff      int64 // bytes handed to gnet
	last      bool  // the response's last bytes are in
	keepAlive bool
	closed    bool // the feeder finished; append must go direct again
	wake      chan struct{}
}

// spoolAppend appends bufs, n bytes of turn ticket's response (end: its
// last), to the connection's spool, making the spool (and starting its
// feeder) if there is none; route has sent them here. It reports false,
// keeping bufs, when no spool file can be made, or the spool has just
// finished: the bytes then go to gnet. Worker only (or the loop, by
// mistake: conn.write).
func (w *writer) spoolAppend(ticket uint64, bufs [][]byte, n int64, end, keepAlive bool) (bool, error) {
	sp := w.q.spool.Load()
	if sp == nil {
		f, err := os.CreateTemp(w.e.tmpDir, "waitron-out-*")
		if err != nil {
			w.e.log.Warn("cannot spool response output; keeping it in memory", "err", err)
			return false, nil
		}
		sp = &outSpool{w: w, file: f, ticket: ticket, wake: make(chan struct{}, 1)}
		w.e.counts.outSpool.Add(1)
		w.q.spool.Store(sp)
		go sp.feed()
	}
	sp.mu.Lock()
	if sp.closed { // the feeder has handed everything to gnet, in order: so can we
		sp.mu.Unlock()
		w.q.spool.CompareAndSwap(sp, nil)
		return false, nil
	}
	for _, b := range bufs {
		if _, err := sp.file.WriteAt(b, sp.wOff); err != nil {
			sp.mu.Unlock()
			release(bufs)
			return true, err
		}
		sp.wOff += int64(len(b))
	}
	w.e.counts.outBytes.Add(uint64(n))
	if end {
		sp.last, sp.keepAlive = true, keepAlive
	}
	sp.mu.Unlock()
	release(bufs)
	sp.poke()
	return true, nil
}

// spooled returns the bytes in the file not yet handed to gnet.
func (sp *outSpool) spooled() int64 {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return sp.wOff - sp.rOff
}

// feed moves the file's bytes into gnet while at most half of
// outbuf_overflow is pending there, waiting for the loop to say it drained
// (a drain watch), then ends the response if its end was spooled. It
// closes and removes the file when it is empty again.
func (sp *outSpool) feed() {
	w := sp.w
	defer func() {
		sp.file.Close()
		os.Remove(sp.file.Name())
	}()
	low := w.e.cfg.outbufLow
	drained := make(chan bool, 1)
	fire := func(ok bool) { drained <- ok }
	for {
		// Then the response's end may never come through the spool.
		if w.unreachable() || w.e.loopsGone.Load() {
			sp.abort()
			return
		}
		if w.pendingOut() > low {
			if err := w.onLoop(func(c *conn) { c.watchDrain(low, true, 0, fire) }, func() { fire(false) }); err != nil {
				sp.abort()
				return
			}
			select {
			case <-drained:
			case <-w.gen.ended:
			}
			continue
		}
		sp.mu.Lock()
		avail := sp.wOff - sp.rOff
		if avail == 0 {
			if sp.last {
				sp.closed = true
				keepAlive := sp.keepAlive
				sp.mu.Unlock()
				w.q.spool.CompareAndSwap(sp, nil)
				_ = w.toGnet(nil, 0, sp.ticket, true, keepAlive)
				return
			}
			sp.mu.Unlock()
			select {
			case <-sp.wake: // more output, or the connection closed (poke)
			case <-w.gen.ended:
			}
			continue
		}
		chunk := bufpool.Get()[:min(avail, bufpool.Size)]
		off := sp.rOff
		sp.mu.Unlock()
		k, err := sp.file.ReadAt(chunk, off)
		if err != nil && k < len(chunk) {
			w.e.log.Error("cannot read spooled response output; closing the connection", "remote", w.remoteStr,
				"spool_dir", w.e.tmpDir, "err", err)
			bufpool.Put(chunk)
			sp.abort()
			w.close(CloseInternalError)
			return
		}
		sp.mu.Lock()
		sp.rOff += int64(k)
		sp.mu.Unlock()
		_ = w.toGnet([][]byte{chunk[:k]}, int64(k), sp.ticket, false, true)
	}
}

// poke wakes the feeder if it waits for output. Any goroutine.
func (sp *outSpool) poke() {
	select {
	case sp.wake <- struct{}{}:
	default:
	}
}

// abort drops what is left; if the response's end was spooled, the
// connection still learns the response is over.
func (sp *outSpool) abort() {
	sp.mu.Lock()
	sp.closed = true
	last, keepAlive := sp.last, sp.keepAlive
	sp.mu.Unlock()
	sp.w.q.spool.CompareAndSwap(sp, nil)
	if last {
		sp.w.ended(sp.ticket, keepAlive, sp.w.e.clock.stamp(), false)
	}
}
