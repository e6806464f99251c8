package engine

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"

	"github.com/waitron/waitron/adapter"
	"github.com/waitron/waitron/codec"
	"github.com/waitron/waitron/internal/bufpool"
)

type phase uint8

const (
	phaseHead    phase = iota // reading a request head
	phaseLength               // reading a Content-Length body
	phaseChunked              // reading a chunked body
)

// continue100 is the interim response to Expect: 100-continue (RFC 9110 §10.1.1).
var continue100 = []byte("HTTP/1.1 100 Continue\r\n\r\n")

// conn is the state of one client connection that its event loop owns:
// only the loop touches it (gnet callbacks, AsyncWrite callbacks and
// Execute runnables). Workers never see a conn: they get its writer, the
// half they share, and reach the loop's state only by running code on the
// loop (writer.onLoop).
type conn struct {
	*writer
	remote net.Addr
	local  *localAddr // shared by the connections to the same address

	phase      phase
	cur        *headSlot   // where the request being read is parsed (nil: both slots in use)
	serving    []*headSlot // the heads of the requests with the worker
	free       []*headSlot // slots not in use: two at most; a burst's others go back to slotPool
	next       *request    // a complete request read while another is served
	aheadErr   error       // a protocol error found while reading ahead, answered in turn
	framing    codec.Framing
	body       *bodyBuffer
	dec        *codec.ChunkedDecoder // the chunked body being read
	remaining  int64
	busy       bool        // a request is with a worker and its response is not complete
	fl         *flight     // that request's (ended by whichever side finishes it)
	drain      flight      // a close waiting for output to drain
	peerCloses bool        // the client said its last request closes the connection
	continued  bool        // 100 Continue was sent for the request being read
	hold       bool        // the request served may take the connection (Upgrade, CONNECT): nothing is read behind it
	hijacked   bool        // its handler took the connection: gnet lets it go, the HTTP machinery forgets it
	closing    bool        // no further request is read; the connection closes once output drains
	reason     CloseReason // why the server is closing the connection, once hasReason
	hasReason  bool
	detail     string // what the reason's log line adds (a bad request's detail)
	eof        bool   // the client half-closed; writes go through fb, input comes from saved
	saved      []byte // input left when the client half-closed
	lingering  bool   // our side is shut down; input is discarded until EOF
	active     stamp  // last sign of life: bytes in, a response handed over, output draining
	headSince  stamp  // when the request head being read started (zero: none)
	bodySince  stamp  // when the request body being read started
	bodyGot    int64  // body bytes taken so far
	sentSeen   int64  // bytes the client had taken at the last deadline check
	sentAt     stamp  // when that figure last moved
	parked     bool   // over connection_limit: not read until a slot frees
	parkedAt   stamp
	refused    bool // over connection_limit and the wait queue: answered 503
	outSeen    int  // gnet's outbound buffer at the last sweep
}

// writer is the half of a connection its worker uses: the output path
// (adapter.Output: Send, SetWriteDeadline, Hijack) and what both sides
// share, which is immutable or atomic. The loop's state is reachable only
// through onLoop.
type writer struct {
	s         *Server
	gc        gnet.Conn       // only its any-goroutine methods here: AsyncWritev, Wake, Close, EventLoop().Execute
	fd        int32           // the socket, for a worker's direct write (see tryWrite)
	gen       *generation     // the run of the event loops this connection belongs to
	ctx       context.Context // ends when the client is gone
	cancel    context.CancelCauseFunc
	remoteStr string // the peer's address as a string, made once for every request

	// loop is the loop's half: touch it only on the event loop, in onLoop
	// runnables and gnet callbacks.
	loop *conn

	// The worker serving the connection's request owns these while it
	// serves: its worker (for Hijack) and the heads the loop handed it with
	// the request (finishDirect gives them back).
	wk    *worker
	heads []*headSlot
	fl    *flight

	want     atomic.Bool  // the loop has input waiting: a worker that finishes must wake it
	closed   atomic.Bool  // gnet has closed the connection
	gone     atomic.Bool  // closed, and no fallback writer carries the output on: workers stop
	wmu      sync.Mutex   // held by a direct write, and by onClose to mark the socket closed
	done     atomic.Int64 // stamp of a keep-alive response a worker wrote itself; 0: none (see collect)
	queued   atomic.Int64 // bytes handed to AsyncWritev whose callback has not run
	buffered atomic.Int64 // gnet's outbound buffer at the last callback
	fb       atomic.Pointer[fallback]
	spool    atomic.Pointer[outSpool] // response output overflowing to a file
	handed   atomic.Int64             // bytes gnet has taken (written or buffered)
	wdl      atomic.Int64             // the response's write deadline, unix nanoseconds; 0: none
	wreason  atomic.Uint32            // a close reason a worker found (CloseReason+1); 0: none
}

// onLoop runs f with the loop's half of the connection, on its event loop.
// Any goroutine; an error means the event loops have stopped and f will
// never run.
func (w *writer) onLoop(f func(c *conn)) error {
	return w.gc.EventLoop().Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
		f(w.loop)
		return nil
	}))
}

// stamp is a point in time as monotonic nanoseconds since the process
// started (plus one, so that zero means "none"): 8 bytes where a
// time.Time takes 24, in a struct every connection has.
type stamp int64

var epoch = time.Now()

func stampOf(t time.Time) stamp { return stamp(t.Sub(epoch)) + 1 }

// nowStamp reads only the monotonic clock (time.Now reads the wall clock
// too): it runs several times per request.
func nowStamp() stamp { return stamp(time.Since(epoch)) + 1 }

// IsZero reports whether s is unset.
func (s stamp) IsZero() bool { return s == 0 }

// since returns how long before now s was.
func (s stamp) since(now time.Time) time.Duration { return time.Duration(stampOf(now) - s) }

// localAddr is the address a client connected to, and its port as a
// string; connections to the same address share one.
type localAddr struct {
	addr net.Addr
	port string
	ctx  context.Context // carries http.LocalAddrContextKey; the parent of each connection's context
}

func (s *Server) newLocalAddr(addr net.Addr, port string) *localAddr {
	return &localAddr{addr: addr, port: port, ctx: context.WithValue(s.baseCtx, http.LocalAddrContextKey, addr)}
}

// localOf returns the local address of gc's socket. gnet reports the
// listener's, which is the socket's unless the listener is a wildcard;
// only then is the socket asked. Interned per address. Loop only.
func (s *Server) localOf(gc gnet.Conn) *localAddr {
	var key netip.AddrPort
	if la, ok := gc.LocalAddr().(*net.TCPAddr); ok && la.Port != 0 && !la.IP.IsUnspecified() {
		key = la.AddrPort()
	} else {
		sa, err := unix.Getsockname(gc.Fd())
		switch a := sa.(type) {
		case *unix.SockaddrInet4:
			key = netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
		case *unix.SockaddrInet6:
			key = netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port))
		default: // a unix socket (or no answer): no port
			addr := gc.LocalAddr()
			if err == nil {
				if a := sockaddrToAddr(sa); a != nil {
					addr = a
				}
			}
			return s.newLocalAddr(addr, "")
		}
	}
	if v, ok := s.locals.Load(key); ok {
		return v.(*localAddr)
	}
	v, _ := s.locals.LoadOrStore(key, s.newLocalAddr(net.TCPAddrFromAddrPort(key), strconv.Itoa(int(key.Port()))))
	return v.(*localAddr)
}

func newConn(s *Server, gc gnet.Conn) *conn {
	c := &conn{writer: &writer{s: s, gc: gc, fd: int32(gc.Fd()), gen: s.gen.Load()}, remote: gc.RemoteAddr()}
	c.loop = c
	if c.remote == nil || c.remote.String() == "" {
		c.remote = &net.UnixAddr{Name: "@", Net: "unix"} // an unnamed unix peer, as net/http reports it
	}
	c.local = s.localOf(gc)
	c.remoteStr = c.remote.String()
	c.active = nowStamp()
	c.headSince, c.sentAt = c.active, c.active
	c.ctx, c.cancel = context.WithCancelCause(c.local.ctx)
	return c
}

// onTraffic runs when bytes arrived (or on Wake). Loop only.
func (c *conn) onTraffic() {
	defer c.guard()
	c.collect()
	c.active = nowStamp()
	if c.lingering || c.closing && !c.busy {
		_, _ = c.gc.Discard(-1)
		return
	}
	if c.parked {
		if c.gc.InboundBuffered() > c.pipelineLimit() {
			c.abort(ClosePipelineOverflow, "sent too much while waiting for a connection slot")
		}
		return // read once a slot frees
	}
	c.process()
}

// guard contains a panic in waitron's own loop-side code: it is logged and
// the connection is closed, never the process. A panic here is a bug.
func (c *conn) guard() {
	if p := recover(); p != nil {
		c.s.log.Error("internal error on the event loop; closing the connection", "remote", c.remoteStr, "panic", p)
		c.closing = true
		c.setReason(CloseInternalError, "internal error on the event loop")
		_ = c.gc.Close()
	}
}

func (c *conn) input() []byte {
	if c.eof {
		return c.saved
	}
	b, _ := c.gc.Peek(-1)
	return b
}

func (c *conn) consume(n int) {
	if n <= 0 {
		return // gnet's Discard(0) would drop the whole buffer
	}
	if c.eof {
		c.saved = c.saved[n:]
		return
	}
	_, _ = c.gc.Discard(n)
}

// headSlot holds a request head and the bytes its spans point into. A
// connection has at most two: one with the worker, one being parsed.
type headSlot struct {
	head codec.Head
	buf  []byte
}

// request is a complete request not yet handed to a worker; its Exchange
// comes in the same allocation.
type request struct {
	x     adapter.Exchange
	body  *bodyBuffer
	slot  *headSlot
	w     *writer    // the connection, as its worker sees it
	fl    flight     // holds Shutdown while the request (or the burst it starts) is served
	burst []*request // set on a burst's first request: the burst, this one first (see batch)
}

// run serves r, or the burst it starts, on worker wk.
func (r *request) run(wk *worker) {
	r.w.wk = wk
	if r.burst != nil {
		r.w.s.serveBatch(r.w, r.burst)
		return
	}
	r.w.s.serve(&r.x, r.body)
}

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
	s := c.s
	for !c.closing && c.next == nil && c.aheadErr == nil && !(c.busy && c.hold) {
		in := c.input()
		if len(in) == 0 {
			break
		}
		switch c.phase {
		case phaseHead:
			if s.draining.Load() {
				if !c.busy {
					c.closeWith(CloseShutdown, "")
				}
				return
			}
			if c.headSince.IsZero() {
				c.headSince = nowStamp()
			}
			if c.cur == nil {
				c.cur = c.takeSlot()
			}
			n, fr, err := c.parseHead(c.cur, in)
			if err != nil {
				c.fail(err)
				return
			}
			if n == 0 {
				return
			}
			c.keepHead(c.cur, in[:n])
			c.framing, c.continued = fr, false
			c.headSince = 0
			c.bodySince, c.bodyGot = nowStamp(), 0
			rest := len(in) - n
			switch fr.Body {
			case codec.BodyNone:
				c.dispatch()
			case codec.BodyLength:
				c.body, c.remaining, c.phase = newBody(s.opts.InbufOverflow, s.files, fr.Length), fr.Length, phaseLength
				if fr.Expect100 && int64(rest) < fr.Length && !c.busy {
					c.sendContinue()
				}
			case codec.BodyChunked:
				c.body, c.phase = newBody(s.opts.InbufOverflow, s.files, -1), phaseChunked
				c.dec = &codec.ChunkedDecoder{Max: s.opts.MaxRequestBodySize, MaxTrailer: s.opts.MaxRequestHeaderSize}
				if fr.Expect100 && rest == 0 && !c.busy {
					c.sendContinue()
				}
			}
		case phaseLength:
			if !c.body.ready() {
				return // the spooler wakes us
			}
			k := min(c.remaining, int64(len(in)), bufpool.Size)
			c.body.write(in[:k], c.wake)
			c.consume(int(k))
			c.bodyGot += k
			if c.remaining -= k; c.remaining == 0 {
				c.dispatch()
			}
		case phaseChunked:
			if !c.body.ready() {
				return
			}
			// Offer at most one buffer's worth so a single write stays small;
			// only a trailer line longer than that needs the whole input.
			lim := in[:min(len(in), bufpool.Size)]
			n, data, err := c.dec.Decode(lim)
			if n == 0 && err == nil && len(lim) < len(in) {
				n, data, err = c.dec.Decode(in)
			}
			if len(data) > 0 {
				c.body.write(data, c.wake)
				c.bodyGot += int64(len(data))
			}
			if err != nil {
				c.fail(err)
				return
			}
			if n == 0 {
				return
			}
			c.consume(n)
			if c.dec.Done() {
				c.dispatch()
			}
		}
	}
	if c.busy && !c.eof && c.gc.InboundBuffered() > c.pipelineLimit() {
		c.s.log.Warn("closing connection: too many pipelined bytes while a request is served",
			"remote", c.remoteStr, "buffered", c.gc.InboundBuffered())
		c.abort(ClosePipelineOverflow, "pipelined input over limit")
	}
}

// pipelineLimit bounds the bytes a client may send ahead while its request
// is served: gnet cannot stop reading, so past this the connection closes.
func (c *conn) pipelineLimit() int {
	return c.s.opts.MaxRequestHeaderSize + c.s.opts.InbufOverflow
}

// parseHead parses a head from in into sl and decides its framing; n is
// its length, 0 while it is incomplete. Nothing is consumed. Loop only.
func (c *conn) parseHead(sl *headSlot, in []byte) (n int, fr codec.Framing, err error) {
	o := &c.s.opts
	if n, err = codec.ParseHead(in, &sl.head, o.MaxRequestHeaderSize); err != nil || n == 0 {
		return 0, fr, err
	}
	fr, err = sl.head.Frame(o.MaxRequestBodySize)
	return n, fr, err
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
	return &request{w: c.writer, slot: sl, x: adapter.Exchange{Head: &sl.head, Framing: fr, Remote: c.remote, Local: c.local.addr,
		RemoteStr: c.remoteStr, LocalPort: c.local.port, Ctx: c.ctx}}
}

// takeSlot returns a free head slot, making one if there is none. Loop only.
func (c *conn) takeSlot() *headSlot {
	if n := len(c.free); n > 0 {
		sl := c.free[n-1]
		c.free = c.free[:n-1]
		return sl
	}
	return slotPool.Get().(*headSlot)
}

// slotPool holds the head slots of idle connections: a connection waiting
// for its next request keeps none.
var slotPool = sync.Pool{New: func() any { return new(headSlot) }}

// releaseSlots gives the free slots back to slotPool. Loop only.
func (c *conn) releaseSlots() {
	for i, sl := range c.free {
		slotPool.Put(sl)
		c.free[i] = nil
	}
	c.free = c.free[:0]
}

// dispatch hands the request just read to the worker pool, or keeps it as
// c.next while another is served. Loop only.
func (c *conn) dispatch() {
	r := c.newRequest(c.cur, c.framing)
	x := &r.x
	x.Out = c.writer
	x.Continued = c.continued
	r.body = c.body
	if r.body != nil {
		r.body.finish()
		x.BodyLen = r.body.n
	}
	if c.phase == phaseChunked {
		x.Trailer = c.dec.Trailer
		c.dec = nil
	}
	c.body, c.phase, c.cur = nil, phaseHead, nil
	if c.busy {
		c.next = r
		return
	}
	c.start(r)
}

// start gives a complete request to a worker, with the bodiless requests
// pipelined right behind it, if any: one worker serves them in turn and
// their responses leave in one write (see batch). Loop only.
func (c *conn) start(r *request) {
	c.busy, c.peerCloses, c.hold = true, r.x.Framing.Close, mayHijack(r)
	// Exact now, and only shrinking while the worker has the connection:
	// the worker may write itself only when nothing is waiting in gnet.
	c.buffered.Store(int64(c.gc.OutboundBuffered()))
	c.serving = append(c.serving[:0], r.slot)
	r.fl.begin(c.gen)
	c.fl = &r.fl
	if r.body == nil && !r.x.Framing.Close && !c.hold {
		if r.burst = c.gatherPipelined(r); r.burst != nil {
			c.peerCloses = r.burst[len(r.burst)-1].x.Framing.Close
		}
	}
	c.heads, c.writer.fl = c.serving, &r.fl // handed to the worker with the request
	c.s.disp.push(r)
}

// serve runs on a worker: it waits for a spooled body, then runs the
// handler through the adapter.
func (s *Server) serve(x *adapter.Exchange, body *bodyBuffer) {
	if body != nil && body.n > 0 {
		rc, err := body.reader()
		if err != nil {
			s.log.Error("cannot read the spooled request body", "err", err)
			_ = x.Out.Send([][]byte{adapter.ErrorResponse(bufpool.GetSmall(), &s.acfg, 500,
				"The request body could not be stored")}, true, false)
			return
		}
		x.Body = rc
	}
	adapter.Serve(&s.acfg, s.handler, x)
}

// responseDone runs on the loop when the last bytes of a response were
// handed to gnet (or the connection was found closed).
func (c *conn) responseDone(keepAlive bool) {
	c.fl.end()
	c.afterResponse(keepAlive, nowStamp())
}

// collect finishes, on the loop, a keep-alive response that its worker
// wrote to the socket itself (see Send): the worker only records when, and
// wakes the loop only if it asked (awaitDone), so a client that waits for
// each response costs no loop wake-up. It reports whether there was one.
// Loop only.
func (c *conn) collect() bool {
	if !c.busy {
		return false
	}
	at := c.done.Swap(0)
	if at == 0 {
		return false
	}
	c.want.Store(false)
	for i := range c.serving { // finishDirect gave them back
		c.serving[i] = nil
	}
	c.serving = c.serving[:0]
	c.afterResponse(true, stamp(at))
	return true
}

// awaitDone, while a request is with a worker and more input is waiting
// (read ahead, a body, a protocol error to answer, pipelined bytes), asks
// the worker to wake the loop when it finishes, or collects a response it
// has finished meanwhile. Both sides store, then load (sequentially
// consistent atomics), so at least one of them sees the other. Loop only.
func (c *conn) awaitDone() {
	for c.busy && !c.closed.Load() && (c.next != nil || c.aheadErr != nil || c.closing ||
		c.phase != phaseHead || c.gc.InboundBuffered() > 0) {
		c.want.Store(true)
		if !c.collect() {
			return
		}
	}
}

// afterResponse moves the connection on after a complete response that
// left at stamp at. Loop only.
func (c *conn) afterResponse(keepAlive bool, at stamp) {
	defer c.guard()
	c.busy = false
	for i, sl := range c.serving {
		sl.head.Reset()
		if len(c.free) < 2 { // keep two for the next requests; a burst's extra slots are shared
			c.free = append(c.free, sl)
		} else {
			slotPool.Put(sl)
		}
		c.serving[i] = nil
	}
	c.serving = c.serving[:0]
	c.active = at
	if !keepAlive {
		c.closeWith(CloseRequested, "")
		return
	}
	if c.closed.Load() && !c.eof {
		return
	}
	if err := c.aheadErr; err != nil {
		c.aheadErr = nil
		c.fail(err)
		return
	}
	if r := c.next; r != nil {
		c.next = nil
		c.start(r)
	} else if c.phase != phaseHead {
		// The body clock starts when the request is first in line; one
		// waiting for 100 Continue gets it now.
		now := nowStamp()
		c.bodySince, c.active = now, now
		if c.framing.Expect100 && c.bodyGot == 0 {
			c.sendContinue()
		}
	} else if !c.headSince.IsZero() {
		c.headSince = nowStamp()
	}
	c.process()
	if c.eof && !c.busy && !c.closing {
		c.closeWith(CloseClientHalfClosed, "")
	}
	if !c.busy {
		c.releaseSlots()
	}
}

// fail answers a protocol error with its status and closes: nothing sent
// after the bad request is executed. Found while another request is
// served, the error waits for that response. Loop only.
func (c *conn) fail(err error) {
	c.dropBody()
	if c.busy {
		c.aheadErr = err
		return
	}
	var ce *codec.Error
	if !errors.As(err, &ce) {
		ce = &codec.Error{Status: 500, Detail: "Internal error"}
	}
	c.write(adapter.ErrorResponse(bufpool.GetSmall(), &c.s.acfg, ce.Status, ce.Detail), true)
	c.s.log.Debug("rejected request", "remote", c.remoteStr, "status", ce.Status, "reason", ce.Detail)
	c.closeWith(CloseBadRequest, ce.Detail)
}

// write sends b from the loop itself, recycling it to bufpool when
// recycle is set. Loop only.
func (c *conn) write(b []byte, recycle bool) {
	if c.eof {
		if fb := c.fb.Load(); fb != nil {
			fb.enqueue([][]byte{append([]byte(nil), b...)})
		}
	} else {
		c.handed.Add(int64(len(b)))
		_, _ = c.gc.Write(b)
	}
	if recycle {
		bufpool.Put(b)
	}
}

// sendContinue answers Expect: 100-continue for the request being read,
// once. Loop only.
func (c *conn) sendContinue() {
	if !c.continued {
		c.continued = true
		c.write(continue100, false)
	}
}

// setReason records why the server closes the connection; the first
// reason given stands. Loop only.
func (c *conn) setReason(r CloseReason, detail string) {
	if !c.hasReason {
		c.reason, c.hasReason, c.detail = r, true, detail
	}
}

// counted counts the close and logs it. Loop only, once per connection.
func (c *conn) counted(r CloseReason) {
	c.s.closes[r].Add(1)
	if c.detail != "" {
		c.s.log.Debug("connection closed", "remote", c.remoteStr, "reason", r.String(), "detail", c.detail)
	} else {
		c.s.log.Debug("connection closed", "remote", c.remoteStr, "reason", r.String())
	}
}

// closeWith stops reading requests and closes once output has drained.
func (c *conn) closeWith(reason CloseReason, detail string) {
	if c.closing {
		return
	}
	c.closing = true
	c.setReason(reason, detail)
	if c.eof {
		if fb := c.fb.Load(); fb != nil {
			fb.finish()
		}
		return
	}
	c.drain.begin(c.gen)
	c.closeWhenDrained(time.Now())
}

// closeWhenDrained closes the connection once gnet's outbound buffer is
// empty (gnet's Close drops pending output), polling from a timer since
// gnet has no drained event. Then our write side is shut down and input is
// discarded briefly, so a client still sending does not turn the close
// into a reset that destroys the response (net/http's closeWriteAndWait).
func (c *conn) closeWhenDrained(start time.Time) {
	if c.closed.Load() {
		c.drain.end()
		return
	}
	if c.gc.OutboundBuffered() > 0 && time.Since(start) < c.drainTimeout() {
		delay := min(time.Since(start)/4+time.Millisecond, 50*time.Millisecond)
		w, drain := c.writer, &c.drain
		time.AfterFunc(delay, func() {
			if w.s.loopsGone.Load() || w.onLoop(func(c *conn) { c.closeWhenDrained(start) }) != nil {
				drain.end() // the engine is gone; so is the connection
			}
		})
		return
	}
	c.drain.end()
	if c.gc.OutboundBuffered() > 0 {
		c.s.log.Warn("closing connection with unsent response bytes: the client stopped reading",
			"remote", c.remoteStr, "unsent", c.gc.OutboundBuffered())
		_ = c.gc.Close()
		return
	}
	if c.peerCloses && c.gc.InboundBuffered() == 0 {
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
	c.lingering = true
	_, _ = c.gc.Discard(-1)
	time.AfterFunc(lingerTime, c.closeAsync)
}

// closeAsync closes the connection from any goroutine, unless gnet has
// already stopped (its queues are gone then; the connection too).
func (w *writer) closeAsync() {
	if !w.s.loopsGone.Load() {
		_ = w.gc.Close()
	}
}

// lingerTime is how long input is discarded after our side shut down.
const lingerTime = 500 * time.Millisecond

func (c *conn) drainTimeout() time.Duration {
	return time.Duration(c.s.opts.ChannelTimeout) * time.Second
}

// sweep closes the connection if it has been idle for channel_timeout:
// no request in flight and no bytes moving either way (output draining
// to a slow reader counts as movement). Loop only.
func (c *conn) sweep(now time.Time, idle time.Duration) {
	if c.s.tickCollects.Load() {
		c.collect()
	}
	if c.closed.Load() || c.busy || c.eof {
		return
	}
	if c.parked {
		if c.parkedAt.since(now) >= idle {
			c.s.unparkRemove(c)
			c.parked, c.refused = false, true
			c.refuseOverload("No connection slot became free in time (connection_limit, channel_timeout)")
		}
		return
	}
	if out := c.gc.OutboundBuffered(); out != c.outSeen {
		c.outSeen, c.active = out, stampOf(now)
		return
	}
	if c.active.since(now) < idle {
		return
	}
	c.s.log.Debug("closing idle connection (channel_timeout)", "remote", c.remoteStr,
		"unsent", c.gc.OutboundBuffered())
	c.abort(CloseIdle, "")
}

// abort closes at once, dropping pending output. Loop only.
func (c *conn) abort(reason CloseReason, detail string) {
	c.closing = true
	c.setReason(reason, detail)
	c.cancel(errors.New("connection closed: " + reason.String()))
	_ = c.gc.Close()
}

// onClose runs when gnet closes the connection: the client closed or reset
// it, or we did. A client that only half-closed (EOF) while its request is
// served still gets its response: the socket is duplicated before gnet
// closes it and the rest of the output goes through a fallback writer.
func (c *conn) onClose(err error) {
	defer c.guard()
	c.wmu.Lock() // a worker writing to the socket finishes before gnet closes it
	c.closed.Store(true)
	c.wmu.Unlock()
	if c.hijacked {
		// detach let the socket go: its handler has it now, and its
		// context is not ours to end.
		c.gone.Store(true)
		c.counted(CloseHijacked)
		return
	}
	c.collect()
	if c.busy && !c.closing && errors.Is(err, io.EOF) {
		// As net/http: the client's FIN ends the request's context (a Go
		// client that cancels its request sends one), and what the
		// handler still writes goes out while the socket takes it.
		c.cancel(errClientClosed)
		if c.adoptHalfClosed() {
			return
		}
	}
	// Only now, with the fallback writer's fate known: a worker that saw
	// closed before it was stored must not take the client for gone and
	// end its response beside the writer (and an output spool feeding it).
	c.gone.Store(true)
	cause := errClientClosed
	if err != nil && !errors.Is(err, io.EOF) {
		cause = err
		c.logSocketError("socket error", err)
	}
	c.cancel(cause)
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
	if w.s.opts.LogSocketErrors {
		w.s.log.Warn(msg, "remote", w.remoteStr, "err", err)
	} else {
		w.s.log.Debug(msg, "remote", w.remoteStr, "err", err)
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
	if in, _ := c.gc.Peek(-1); len(in) > 0 {
		c.saved = append([]byte(nil), in...)
	}
	c.eof = true
	fb := newFallback(nc, c.writer, seconds(c.s.opts.SendTimeout))
	fb.fl.begin(c.gen)
	c.fb.Store(fb)
	go fb.run()
	return true
}
