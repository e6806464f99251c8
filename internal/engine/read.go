package engine

import (
	"bytes"
	"errors"
	"net/http"
	"runtime"
	"sync"

	"github.com/waitron/waitron/codec"
	"github.com/waitron/waitron/internal/adapter"
)

// Reading requests, handing them to workers, and moving on once a
// response is complete. Loop only.

// process parses requests and dispatches them in order. While one is
// served it reads one more ahead, so a client that sends its next request
// (and body, spooled like any other) as soon as it has read a response is
// not mistaken for a flood; later pipelined requests wait in gnet's
// buffer, and a protocol error found ahead is answered in turn, after the
// response being sent. Loop only.
func (c *conn) process() {
	c.readInput()
	c.awaitDone()
}

func (c *conn) readInput() {
	e := c.e
	for !c.st.closing() && c.next == nil && c.ahead() == nil && !(c.st.busy && c.hold) {
		if c.rd.InBody() && !c.body.ready() {
			// The spooler is behind: give it the processor once (on a
			// busy loop it may have no other), then, if it is still
			// behind, leave the rest to its wake. Not even a look at the
			// input meanwhile: while bytes wait in gnet's inbound buffer,
			// each look copies all of them into one slice.
			runtime.Gosched()
			if !c.body.ready() {
				return
			}
		}
		in := c.input()
		if len(in) == 0 {
			if c.w.tls != nil && c.w.tls.err != nil {
				c.tlsFailed()
				return
			}
			break
		}
		if !c.proxied {
			if !e.cfg.proxyProtocol {
				c.proxied = true // nothing to look for
			} else if !c.readProxyHeader(in) {
				return
			} else {
				continue // the input after the header
			}
		}
		if c.seq == 0 && c.cur == nil && e.cfg.h2c && c.w.tls == nil && bytes.HasPrefix(h2Preface, in[:min(len(in), len(h2Preface))]) {
			if len(in) < len(h2Preface) {
				return // perhaps the HTTP/2 preface: wait for the rest
			}
			c.handOffH2(in[len(h2Preface):])
			return
		}
		if !c.rd.InBody() {
			if e.draining.Load() {
				if !c.st.busy {
					c.close(CloseShutdown, "")
				}
				return
			}
			if c.headSince.IsZero() {
				c.headSince = c.now()
			}
			c.setState(http.StateActive)
			if c.cur == nil {
				c.cur = c.takeSlot()
			}
			st, err := c.rd.Next(in, &c.cur.head)
			if err != nil {
				c.fail(err)
				return
			}
			if !st.Head {
				return // the head is not complete
			}
			c.keepHead(c.cur, in[:st.N])
			c.continued = false
			c.headSince = 0
			c.bodySince, c.bodyGot = c.now(), 0
			fr, rest := c.rd.Framing(), len(in)-st.N
			switch {
			case st.End:
				c.dispatch()
			case fr.Body == codec.BodyLength:
				c.body = newBody(e.cfg.inbufOverflow, e.files, fr.Length)
				if fr.Expect100 && int64(rest) < fr.Length && !c.st.busy {
					c.sendContinue()
				}
			default: // chunked
				c.body = newBody(e.cfg.inbufOverflow, e.files, -1)
				if fr.Expect100 && rest == 0 && !c.st.busy {
					c.sendContinue()
				}
			}
			continue
		}
		st, err := c.rd.Next(in, nil)
		if len(st.Data) > 0 {
			c.body.write(st.Data, c.w.wake)
			c.bodyGot += int64(len(st.Data))
		}
		if err != nil {
			c.fail(err)
			return
		}
		if st.N == 0 {
			return
		}
		c.consume(st.N)
		if st.End {
			c.dispatch()
		}
	}
	if c.st.busy && !c.st.eof && c.inBuffered() > c.e.cfg.pipelineLimit {
		c.e.log.Warn("closing connection: too many pipelined bytes while a request is served",
			"remote", c.w.remoteStr, "buffered", c.inBuffered())
		c.close(ClosePipelineOverflow, "pipelined input over limit")
	}
}

// keepHead copies the parsed head's bytes into sl, before gnet's buffer
// moves on, and consumes them. Loop only.
func (c *conn) keepHead(sl *headSlot, head []byte) {
	sl.buf = append(sl.buf[:0], head...)
	sl.head.Rebase(sl.buf)
	c.consume(len(head))
}

// wake asks the loop to resume reading this connection. Any goroutine.
func (w *writer) wake() { _ = w.gc.Wake(nil) }

// newRequest starts the request parsed into sl. Loop only.
func (c *conn) newRequest(sl *headSlot, fr codec.Framing) *request {
	r := c.lc.spare.takeRecord()
	if !c.e.bare {
		// What the handler may keep (its Request, context and URL) and its
		// ResponseWriter, which a stray goroutine may still call: never
		// reused, unlike the record.
		r.x.HTTP = new(adapter.HTTPState)
	}
	r.w, r.slot, r.start = c.w, sl, c.now()
	x := &r.x
	x.Head, x.Framing, x.Remote, x.Local = &sl.head, fr, c.remote, c.local.addr
	x.RemoteStr, x.LocalPort, x.Ctx = c.w.remoteStr, c.local.port, c.w.ctx
	c.seq++
	x.ConnID, x.Seq = c.id, c.seq
	if c.w.tls != nil {
		x.TLS = c.w.tls.state
	}
	if c.e.bare { // only bare handlers (fasthttp's) see the times (ctx.ConnTime, ctx.Time)
		x.Opened, x.Received = c.lc.openedOf(c), c.lc.timeOf(r.start)
	}
	return r
}

// takeSlot returns a free head slot, making one if there is none. Loop only.
func (c *conn) takeSlot() *headSlot {
	if c.nfree > 0 {
		c.nfree--
		sl := c.free[c.nfree]
		c.free[c.nfree] = nil
		return sl
	}
	return c.lc.spare.takeSlot()
}

// putFree keeps sl, reset, for the connection's next requests, or gives
// it to the loop when two are kept already (a burst's extra slots). Loop
// only.
func (c *conn) putFree(sl *headSlot) {
	if int(c.nfree) < len(c.free) {
		c.free[c.nfree] = sl
		c.nfree++
		return
	}
	c.lc.spare.putSlot(sl)
}

// slotPool holds the head slots of idle connections, beyond what their
// loops keep (spares): a connection waiting for its next request keeps
// none.
var slotPool = sync.Pool{New: func() any { return new(headSlot) }}

// releaseSlots gives the free slots back to the loop. Loop only.
func (c *conn) releaseSlots() {
	for i, sl := range c.free[:c.nfree] {
		c.lc.spare.putSlot(sl)
		c.free[i] = nil
	}
	c.nfree = 0
}

// dispatch hands the request just read to the worker pool, or keeps it as
// c.next while another is served. Loop only.
func (c *conn) dispatch() {
	r := c.newRequest(c.cur, c.rd.Framing())
	x := &r.x
	x.Continued = c.continued
	r.body = c.body
	if r.body != nil {
		r.body.finish()
		x.BodyLen = r.body.n
		if r.body.sp != nil {
			c.e.counts.bodySpool.Add(1)
			c.e.counts.bodyBytes.Add(uint64(r.body.n))
		}
	}
	x.Trailer, x.TrailerFields = c.rd.TakeTrailer()
	c.body, c.cur = nil, nil
	if c.st.busy {
		c.next = r
		return
	}
	c.start(r)
}

// start gives a complete request to a worker, with the bodiless requests
// pipelined right behind it, if any: one worker serves them in turn and
// their responses leave in one write (see batch). Loop only.
func (c *conn) start(r *request) {
	if lim := c.e.cfg.queueLimit; lim > 0 && c.e.disp.queued() >= lim {
		c.shed(r)
		return
	}
	c.st.startServing()
	c.setState(http.StateActive) // (a request read ahead while its predecessor was served)
	c.peerCloses, c.hold = r.x.Framing.Close, mayHijack(r)
	// Exact now, and only shrinking while the worker has the connection:
	// the worker may write itself only when nothing is waiting in gnet.
	c.w.q.buffered.Store(int64(c.gc.OutboundBuffered()))
	c.reqT = c.w.req.begin(c.w.gen)
	// Handed over with the request: the turn is the worker's from here.
	r.turn = turn{w: c.w, ticket: c.reqT, handedAt: c.w.q.handed.Load()}
	r.x.Out = &r.turn
	if r.body == nil && !r.x.Framing.Close && !c.hold {
		if r.burst = c.gatherPipelined(r); r.burst != nil {
			c.peerCloses = r.burst[len(r.burst)-1].x.Framing.Close
		}
	}
	q := c.lc.queue
	if started := c.e.disp.push(q, r); c.e.yieldToWorkers && c.lc.yieldAfter(q.n.Load(), started) {
		runtime.Gosched()
	}
}

// When every P runs an event loop (Server.yieldToWorkers), the workers
// wait for a loop to give its P up, and the loop chooses when, after each
// hand-off (yieldAfter). While requests come a few at a time it yields at
// once, so the worker just started (or lingering) serves the request and
// its response leaves while the loop reads on: otherwise the worker would
// wait until the loop had handled every event of its round, and client
// and server would work in turn, each idle while the other works. Under
// load that costs a goroutine switch each way per request, so a loop that finds yieldBatch
// requests waiting at once lets the next ones wait too, until yieldBatch
// do again or its round ends (gnet yields when it finds no more events):
// the workers then serve them in one go. It keeps batching while full
// batches form, and a loop that yields at once tries batching every
// probeEvery hand-offs, to find out whether load has grown.
const (
	yieldBatch = 16 // the first of them waits some microseconds of parsing
	probeEvery = 64
)

// yieldAfter reports whether the loop should give its P to the workers
// now, after a hand-off that left waiting requests in its queue (started:
// the push started a worker or found one lingering). Loop only.
func (lc *loopConns) yieldAfter(waiting int64, started bool) bool {
	if waiting == 1 { // the queue was empty: the last stretch is over
		lc.batching = lc.stretch >= yieldBatch
		lc.stretch = 0
	}
	lc.stretch = max(lc.stretch, waiting)
	if !lc.batching {
		if lc.handOffs++; lc.handOffs%probeEvery == 0 {
			lc.batching = true // a probe: this stretch decides
			return false
		}
		return started
	}
	return waiting >= yieldBatch
}

// afterResponse moves the connection on after a complete response that
// left at stamp at. Loop only.
func (c *conn) afterResponse(keepAlive bool, at stamp) {
	defer c.guard()
	c.st.finishServing()
	c.active = at
	if !keepAlive {
		c.close(CloseRequested, "")
		return
	}
	c.setState(http.StateIdle)
	if c.w.q.closed.Load() && !c.st.eof {
		return
	}
	if err := c.ahead(); err != nil {
		c.rare.aheadErr = nil
		c.failWith(err, c.rare.aheadHead)
		return
	}
	if r := c.next; r != nil {
		c.next = nil
		c.start(r)
	} else if c.rd.InBody() {
		// The body clock starts when the request is first in line; one
		// waiting for 100 Continue gets it now.
		now := c.now()
		c.bodySince, c.active = now, now
		if c.rd.Framing().Expect100 && c.bodyGot == 0 {
			c.sendContinue()
		}
	} else if !c.headSince.IsZero() {
		c.headSince = c.now()
	}
	c.process()
	if c.st.eof && !c.st.busy && !c.st.closing() {
		c.close(CloseClientHalfClosed, "")
	}
	if !c.st.busy {
		c.releaseSlots()
	}
}

// fail answers a protocol error with its status and closes: nothing sent
// after the bad request is executed. Found while another request is
// served, the error waits for that response. Loop only.
func (c *conn) fail(err error) {
	c.dropBody()
	rh := c.refusedHead()
	if c.st.busy {
		c.rares().aheadErr, c.rare.aheadHead = err, rh
		return
	}
	c.failWith(err, rh)
}

// failWith is fail for a request whose head is rh. Loop only.
func (c *conn) failWith(err error, rh servedHead) {
	var ce *codec.Error
	if !errors.As(err, &ce) {
		ce = &codec.Error{Status: 500, Detail: "Internal error"}
	}
	c.e.log.Debug("rejected request", "remote", c.w.remoteStr, "status", ce.Status, "reason", ce.Detail)
	c.answerUnserved(ce.Status, ce.Detail, CloseBadRequest, rh)
	c.close(CloseBadRequest, ce.Detail)
}

// refusedHead returns the request line of the request being read, as the
// access log shows it ("-" for each part when the line did not parse).
// Loop only, before the input it was parsed from moves on.
func (c *conn) refusedHead() servedHead {
	switch {
	case c.cur == nil:
		return servedHead{"-", "-", "-"}
	case !c.cur.head.RequestLine:
		if c.cur.head.IsHEAD() { // for answerUnserved: no body
			return servedHead{"HEAD", "-", "-"}
		}
		return servedHead{"-", "-", "-"}
	}
	return headOfCodec(&c.cur.head)
}

// answerUnserved answers, from the loop, a request no handler saw with
// waitress's error response of status (without a body for a HEAD), counts
// it (method "other": the parser may not have got as far) and logs its
// access line, with its request line rh and the close reason that
// follows. Loop only.
func (c *conn) answerUnserved(status int, detail string, reason CloseReason, rh servedHead) {
	b := c.e.errorResponse(status, detail, rh.method == "HEAD")
	c.logRefused(status, len(b), reason, rh)
	c.write(b, true)
	c.e.counts.response(numMethods-1, status, 0)
}

// sendContinue answers Expect: 100-continue for the request being read,
// once. Loop only.
func (c *conn) sendContinue() {
	if !c.continued {
		c.continued = true
		c.write(continue100, false)
	}
}

// shed answers r 503 without handing it to a worker, and closes: as many
// requests as queue_limit allows already wait for one. Loop only.
func (c *conn) shed(r *request) {
	rh := headOfCodec(r.x.Head)
	if r.body != nil {
		r.body.abort()
	}
	r.slot.head.Reset()
	c.putFree(r.slot)
	*r = request{}
	c.lc.spare.giveBack(nil, []*request{r})
	c.e.noteShed("queue_limit")
	c.answerUnserved(http.StatusServiceUnavailable, "Too many requests are waiting for a worker (queue_limit)", CloseOverload, rh)
	c.close(CloseOverload, "queue_limit")
}
