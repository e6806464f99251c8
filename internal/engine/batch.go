package engine

import (
	"sync"
	"time"

	"github.com/waitron/waitron/codec"
	"github.com/waitron/waitron/internal/bufpool"
)

// maxBatch bounds the pipelined requests handed to a worker at once.
const maxBatch = 32

// batchFlush bounds the memory (buffer capacity, not just bytes) of the
// finished responses a batch holds back before writing them anyway: 32
// short responses fit, each in one 4 KiB buffer.
const batchFlush = 128 << 10

// gatherPipelined takes the complete, bodiless requests that follow in the
// input (a pipelining client's burst), so that one worker serves them in
// turn and their responses leave in one write instead of one write and
// two goroutine hand-offs each. It stops at the first request that is
// incomplete, has a body, asks to close, or does not parse; that one is
// left to the normal path (read ahead, or answered in turn). It returns
// nil when none follows, else the burst: first, then those taken. Loop
// only.
func (c *conn) gatherPipelined(first *request) []*request {
	var rs []*request
	for len(rs) < maxBatch && !c.e.draining.Load() {
		in := c.input()
		if len(in) == 0 {
			break
		}
		// Only a complete, valid, bodiless head is taken; anything else
		// stays unconsumed in the input for the normal path.
		sl := c.takeSlot()
		n, fr, err := codec.ReadHead(in, &sl.head, c.e.cfg.maxHead, c.e.cfg.maxBody)
		if err != nil || n == 0 || fr.Body != codec.BodyNone {
			sl.head.Reset()
			c.putFree(sl)
			break
		}
		c.keepHead(sl, in[:n])
		if rs == nil {
			rs = takeBurst()
			rs = append(rs, first)
		}
		r := c.newRequest(sl, fr)
		rs = append(rs, r)
		if fr.Close {
			break
		}
		if mayHijack(r) {
			c.hold = true // the burst's last: nothing is read behind it
			break
		}
	}
	return rs
}

// burstPool recycles the arrays of bursts (gatherPipelined's), which
// hold nothing once the burst is served (run gives them back).
var burstPool = sync.Pool{New: func() any { return new([maxBatch]*request) }}

// takeBurst returns an empty burst with room for maxBatch requests.
func takeBurst() []*request { return burstPool.Get().(*[maxBatch]*request)[:0] }

// putBurst gives back the array of a burst taken with takeBurst, served
// and recycled: nothing else refers to it (batch.rest is cleared).
func putBurst(rs []*request) {
	if cap(rs) != maxBatch {
		return
	}
	a := (*[maxBatch]*request)(rs[:maxBatch])
	clear(a[:])
	burstPool.Put(a)
}

// serveBatch serves pipelined requests of one connection in turn t on one
// worker. Worker only.
func (e *env) serveBatch(t *turn, rs []*request, wk *worker) {
	b := &batch{w: t.w, t: t, wk: wk, pending: make([][]byte, 0, len(rs)), unsent: wk.unsent} // a buffer per response, usually
	for i, r := range rs {
		if b.finished {
			break // the connection closes (or is gone): the rest are not executed
		}
		b.final, b.rest = i == len(rs)-1, rs[i+1:]
		r.x.Out = b
		e.serve(r, wk)
	}
	b.settle(0) // none, unless the batch ended without a write after them
	wk.unsent = b.unsent[:0]
	b.rest = nil // every request's Out is b: a kept Request must not hold the burst's records, which are reused
}

// batch is the Output of the requests of a batch. The complete responses
// of all but the last are held back (up to batchFlush of buffers) and written
// with the next output, so a burst of pipelined requests is answered with
// one write; the last response ends the batch on the connection, which
// then counts as one request in flight.
type batch struct {
	w        *writer
	t        *turn   // the burst's turn, which its writes go through
	wk       *worker // serving it
	pending  [][]byte
	size     int
	final    bool       // the request being served is the batch's last
	rest     []*request // the requests after it
	finished bool       // the connection has seen the end of the batch
	// unsent is the served requests whose complete responses are held
	// back: they are counted and logged when a write takes them (settle),
	// with its time as their end, the time their client can have them;
	// heldCur says Send has just held the response of the request being
	// served (its serve then adds it to unsent).
	unsent  []served
	heldCur bool
}

// SetWriteDeadline implements adapter.Output.
func (b *batch) SetWriteDeadline(t time.Time) { b.w.SetWriteDeadline(t) }

// Refuse implements adapter.Output: the error response ends the batch,
// after the responses it holds.
func (b *batch) Refuse(status int, detail string, head bool) (int64, error) {
	r := b.w.e.errorResponse(status, detail, head)
	return int64(len(r)), b.Send([][]byte{r}, true, false)
}

func (b *batch) Send(bufs [][]byte, last, keepAlive bool) error {
	gone := b.w.q.gone.Load() // a half-closed client still gets its responses
	if last && keepAlive && !b.final && !gone {
		b.hold(bufs)
		b.heldCur = true
		if b.size < batchFlush {
			return nil
		}
		bufs, last = nil, false // write what is held, the batch goes on
	}
	b.hold(bufs)
	if last {
		b.finished = true
	}
	return b.write(last, keepAlive)
}

// write sends what the batch holds and settles the responses it took.
func (b *batch) write(last, keepAlive bool) error {
	err := b.t.Send(b.pending, last, keepAlive) // it keeps the buffers, not the array
	clear(b.pending)
	b.pending, b.size = b.pending[:0], 0
	// The write's end: push's reading when it wrote them whole
	// itself (the last request's serve reads it again), else now.
	b.settle(b.wk.doneAt)
	return err
}

// settle counts and logs the held responses a write has taken, with end
// as their end (zero: now, read once for all). A response held just now
// by the request being served is not among them yet: its handler has not
// returned, so it is settled by the next write, a little late. Worker
// only.
func (b *batch) settle(end stamp) {
	if len(b.unsent) == 0 {
		return
	}
	if end == 0 {
		end = b.w.e.clock.stamp()
	}
	t := tally{k: &b.w.e.counts}
	for _, sv := range b.unsent {
		b.w.e.account(sv, end, &t)
	}
	t.flush()
	clear(b.unsent)
	b.unsent = b.unsent[:0]
}

// hold adds bufs to what the batch will write. A slice that fits in the
// room left in the last pooled buffer held is copied there and recycled
// at once, so a burst of short responses leaves as one buffer, not one
// per response: one iovec for the kernel to copy instead of sixteen, and
// one buffer in cache. (Every slice of a pooled capacity given to Send is
// its own, to recycle, so the room after it is free to fill.)
func (b *batch) hold(bufs [][]byte) {
	for _, x := range bufs {
		if n := len(b.pending); n > 0 {
			if last := b.pending[n-1]; bufpool.Pooled(last) && len(x) <= cap(last)-len(last) {
				b.pending[n-1] = append(last, x...)
				bufpool.Put(x)
				continue
			}
		}
		b.pending = append(b.pending, x)
		b.size += cap(x)
	}
}
