package engine

import (
	"net"
	"sync"
	"time"
)

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
			fb.w.endContext(err)
			return
		}
	}
}
