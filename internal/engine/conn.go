package engine

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"

	"github.com/waitron/waitron/codec"
	"github.com/waitron/waitron/internal/adapter"
	"github.com/waitron/waitron/internal/bufpool"
)

// continue100 is the interim response to Expect: 100-continue (RFC 9110 §10.1.1).
var continue100 = []byte("HTTP/1.1 100 Continue\r\n\r\n")

// conn is the state of one client connection that its event loop owns:
// only the loop touches it (gnet callbacks, AsyncWrite callbacks and
// Execute runnables). Workers never hold a conn: they get its writer w, the
// half they share, and reach the loop's state only by running code on the
// loop (writer.onLoop), which finds the conn through gnet's per-connection
// context, there.
type conn struct {
	e      *env
	gc     gnet.Conn
	w      *writer // the half shared with workers: immutable or atomic fields only
	remote net.Addr
	local  *localAddr // shared by the connections to the same address
	lc     *loopConns // its loop's set and counters
	link   connLink   // its place in lc's set

	st         connState    // open/closing/…, the slot, busy, half-closed: see state.go
	outSeen    int32        // gnet's outbound buffer at the last sweep (compared only: a wrap is harmless)
	rd         codec.Reader // where in the request being read the input is
	cur        *headSlot    // where the request being read is parsed (nil: both slots in use)
	free       [2]*headSlot // slots not in use (free[:nfree]); a burst's others go back to the loop's spares
	next       *request     // a complete request read while another is served
	rare       *connRare    // what few connections need (nil until one does)
	body       *bodyBuffer
	id         uint64 // the connection's number, unique in the process (from 1)
	opened     stamp  // when the connection was accepted
	seq        uint64 // the requests read on it so far
	reqT       uint64 // the ticket of w.req's current turn (the worker has a copy in its request)
	peerCloses bool   // the client said its last request closes the connection
	continued  bool   // 100 Continue was sent for the request being read
	hold       bool   // the request served may take the connection (Upgrade, CONNECT): nothing is read behind it
	proxied    bool   // the PROXY protocol header is handled (or absent, or proxy_protocol off)
	nfree      uint8  // slots in free
	sentIdle   bool   // nothing was pending at the last check: the kernel need not be asked again
	h2         bool   // handed to the HTTP/2 server (h2c): its slot and its close are that server's
	active     stamp  // last sign of life: bytes in, a response handed over, output draining
	tick       stamp  // now, for the stamps of one onTraffic call (zero outside one: read the clock)
	headSince  stamp  // when the request head being read started (zero: none)
	bodySince  stamp  // when the request body being read started
	bodyGot    int64  // body bytes taken so far
	sentSeen   int64  // bytes the client had taken (acknowledged) at the last deadline check
	sentAt     stamp  // when that figure last moved
	sentHanded int64  // the bytes handed over at the last check (see sentIdle)
	inSeen     int    // gnet's inbound buffer when the last OnTraffic ended
}

// writer is the half of a connection its worker uses: the output path
// (adapter.Output: Send, SetWriteDeadline, Hijack) and what both sides
// share, which is immutable or atomic. It has no way to the loop's state
// but onLoop, the one crossing (with atLoop, its form for gnet's write
// callbacks, which run on the loop already); TestWorkerSideNamesNoConn
// holds it so.
type writer struct {
	e         *env
	gc        gnet.Conn       // only its any-goroutine methods here: AsyncWritev, Wake, Close, EventLoop().Execute
	fd        int32           // the socket, for a worker's direct write (see writeNow)
	reason    atomic.Uint32   // why the server closes the connection (CloseReason+1), first wins; 0: none yet (beside fd: no padding)
	gen       *generation     // the run of the event loops this connection belongs to
	ctx       context.Context // ends when the client is gone (for net/http handlers; see newConn)
	cancel    context.CancelCauseFunc
	lazy      atomic.Pointer[lazyCtx] // a bare adapter's context, made when a handler asks (Context)
	remoteStr string                  // the peer's address as a string, made once for every request
	spare     *spares                 // the loop's store of head slots and records, which workers give back to
	tls       *tlsConn                // the record layer of a TLS connection; nil: plain

	// req holds Shutdown while a request (or burst) of the connection is
	// served: begun by the loop when it hands the request over, ended by
	// the loop when the response is complete (collect), with the turn's
	// ticket.
	req flight

	q     outQueue     // the connection's output, in order (queue.go)
	taken atomic.Int64 // bytes the client had acknowledged when gnet closed the connection, plus one; 0: not closed so
	wdl   atomic.Int64 // the response's write deadline, unix nanoseconds; 0: none
}

// onLoop is the one way from the worker side to the loop's state: it runs
// f with the loop's half of the connection, on its event loop — or, if
// gnet has closed the connection by then (its conn is gone), gone (which
// may be nil). Any goroutine; an error means the event loops have stopped
// and neither will run.
func (w *writer) onLoop(f func(c *conn), gone func()) error {
	return w.gc.EventLoop().Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
		w.atLoop(f, gone)
		return nil
	}))
}

// atLoop is onLoop for code already on the loop (a gnet write callback):
// it runs f with the loop's half of the connection now, or gone if the
// connection is gone: gnet has closed it, and it is not a half-closed
// client's whose requests are still answered (loopConns.halfClosed).
// Loop only.
func (w *writer) atLoop(f func(c *conn), gone func()) {
	c, ok := w.gc.Context().(*conn)
	if !ok || c.w != w {
		c = w.e.loopConnsOf(w.gc).halfClosed[w]
	}
	if c != nil {
		f(c)
	} else if gone != nil {
		gone()
	}
}

// turn is a request's (or a pipelined burst's) time with a worker: what
// the loop hands over with it (the connection's writer, the flight's
// ticket) and what the worker adds (itself). It is the request's Output
// (a burst's requests write through their batch, which writes through
// it): the worker's own, never shared, and gone with the request's record.
type turn struct {
	w        *writer
	ticket   uint64   // of the connection's flight (writer.req) for this turn
	handedAt int64    // the connection's bytes handed over when the turn began (writer.handed)
	wk       *worker  // the worker serving it
	first    *request // the request, or the burst's first (whose burst lists them all)
	ended    bool     // the response's end is pushed: nothing more of the turn goes out
}

// slots returns the head slots of the turn's requests, in buf. Worker
// only.
func (t *turn) slots(buf *[maxBatch + 1]*headSlot) []*headSlot {
	if t.first.burst == nil {
		buf[0] = t.first.slot
		return buf[:1]
	}
	n := 0
	for _, r := range t.first.burst {
		buf[n] = r.slot
		n++
	}
	return buf[:n]
}

// stamp is a point in time as monotonic nanoseconds since the process
// started (plus one, so that zero means "none"): 8 bytes where a
// time.Time takes 24, in a struct every connection has.
type stamp int64

var epoch = time.Now()

func stampOf(t time.Time) stamp { return stamp(t.Sub(epoch)) + 1 }

// time returns s as a time.Time, without reading the clock.
func (s stamp) time() time.Time { return epoch.Add(time.Duration(s - 1)) }

// connIDs numbers the connections of every server in the process.
var connIDs atomic.Uint64

// clock is a server's time for its stamps and timeouts: the monotonic
// clock plus an offset that only tests move (export_test.go's Advance),
// so a test passes a timeout without waiting for it.
type clock struct{ skew atomic.Int64 }

// stamp returns now. It reads only the monotonic clock (time.Now reads
// the wall clock too): it runs several times per request. Any goroutine.
func (k *clock) stamp() stamp { return stamp(time.Since(epoch)+time.Duration(k.skew.Load())) + 1 }

// now returns now as a time.Time, for the periodic checks. Any goroutine.
func (k *clock) now() time.Time { return time.Now().Add(time.Duration(k.skew.Load())) }

// now returns the stamp of the onTraffic call under way, or reads the
// clock outside one. Loop only.
func (c *conn) now() stamp {
	if c.tick != 0 {
		return c.tick
	}
	return c.e.clock.stamp()
}

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

func newConn(s *Server, gc gnet.Conn, lc *loopConns) *conn {
	gen := s.gen.Load()
	c := &conn{e: &s.env, gc: gc, w: &writer{e: &s.env, gc: gc, fd: int32(gc.Fd()), gen: gen, spare: &lc.spare},
		remote: gc.RemoteAddr(), id: connIDs.Add(1), lc: lc,
		rd: codec.Reader{MaxHead: s.cfg.maxHead, MaxBody: s.cfg.maxBody, Piece: bufpool.Size}}
	if c.remote == nil || c.remote.String() == "" {
		c.remote = &net.UnixAddr{Name: "@", Net: "unix"} // an unnamed unix peer, as net/http reports it
	}
	c.local = s.localOf(gc)
	c.w.remoteStr = c.remote.String()
	c.active = c.e.clock.stamp()
	c.opened, c.headSince, c.sentAt = c.active, c.active, c.active
	if s.bare {
		// A fasthttp handler has no context to end (fasthttp has no
		// per-request cancellation), and the output's waits end on the
		// loop's own signals: a context of its own would be 96 bytes
		// more per connection, for nothing.
		c.w.ctx, c.w.cancel = c.local.ctx, noCancel
	} else {
		c.w.ctx, c.w.cancel = context.WithCancelCause(c.local.ctx)
	}
	return c
}

func noCancel(error) {}

// lazyCtx is a context made for a bare adapter's handler that asked for
// one (fastadapter.Context): connections whose handlers never ask do not
// pay for it.
type lazyCtx struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
}

// ctxEnded stands in writer.lazy once the connection's context has ended.
var ctxEnded = &lazyCtx{}

// endContext ends the connection's context with cause: a net/http
// handler's, or a bare adapter's if one was made. Loop or fallback
// writer.
func (w *writer) endContext(cause error) {
	w.cancel(cause)
	if old := w.lazy.Swap(ctxEnded); old != nil && old != ctxEnded {
		old.cancel(cause)
	}
}

// Context returns the context of the connection, which ends when the
// client is gone: a bare adapter's is made at the first call. Worker.
func (t *turn) Context() context.Context {
	w := t.w
	if !w.e.bare {
		return w.ctx
	}
	l := w.lazy.Load()
	if l == nil {
		ctx, cancel := context.WithCancelCause(w.ctx)
		if w.lazy.CompareAndSwap(nil, &lazyCtx{ctx, cancel}) {
			return ctx
		}
		cancel(errClientClosed)
		l = w.lazy.Load()
	}
	if l == ctxEnded {
		ctx, cancel := context.WithCancelCause(w.ctx)
		cancel(errClientClosed)
		return ctx
	}
	return l.ctx
}

// connRare is what few connections ever need, or need only once they
// close, made by the first use, so that every idle connection's conn stays
// in a smaller size class.
type connRare struct {
	aheadErr  error        // a protocol error found while reading ahead, answered in turn
	aheadHead servedHead   // the request line it was found in
	detail    string       // what the close reason's log line adds (a bad request's detail)
	saved     []byte       // input left when the client half-closed
	watches   []drainWatch // waits for the output to drain (see drain.go)
	drain     flight       // a close waiting for output to drain
	drainT    uint64
	parkedAt  stamp          // when the connection was parked under connection_limit
	connState http.ConnState // the state ConnState was last told, plus one; 0: none yet
	view      net.Conn       // what stands for the connection in the hooks (connhooks.go)
}

// rares returns c's connRare, making it. Loop only.
func (c *conn) rares() *connRare {
	if c.rare == nil {
		c.rare = new(connRare)
	}
	return c.rare
}

// ahead returns the protocol error found while reading ahead, if any.
// Loop only.
func (c *conn) ahead() error {
	if c.rare == nil {
		return nil
	}
	return c.rare.aheadErr
}

// onTraffic runs when bytes arrived (or on Wake). Loop only.
func (c *conn) onTraffic() {
	defer c.guard()
	// gnet does not say how much it read: what is buffered now beyond
	// what was left after the last call is new.
	if in := c.gc.InboundBuffered(); in > c.inSeen {
		c.lc.bytesIn.Add(uint64(in - c.inSeen))
	}
	defer func() { c.inSeen = c.gc.InboundBuffered() }()
	// One reading of the clock for everything this call stamps (the
	// connection's activity, a head's and a body's start, the request's
	// start): they are the same moment to the timeouts and to the access
	// log, and the clock costs tens of nanoseconds per reading.
	c.tick = c.e.clock.stamp()
	defer func() { c.tick = 0 }()
	c.collect()
	c.noteOutput() // traffic: a sign of life, and a moment to look at its drain watches
	c.active = c.tick
	if c.st.lingering() || c.st.closing() && !c.st.busy {
		c.discardInput()
		return
	}
	if c.st.parked() {
		if c.inBuffered() > c.e.cfg.pipelineLimit {
			c.close(ClosePipelineOverflow, "sent too much while waiting for a connection slot")
		}
		return // read once a slot frees
	}
	c.process()
}

// guard contains a panic in waitron's own loop-side code: it is logged and
// the connection is closed, never the process. A panic here is a bug.
func (c *conn) guard() {
	if p := recover(); p != nil {
		c.e.log.Error("internal error on the event loop; closing the connection", "remote", c.w.remoteStr,
			"state", c.st.String(), "panic", p, "stack", string(debug.Stack()))
		// A request being read, with nothing of a response begun, gets a
		// 500 rather than a bare close; anything else can only be cut.
		answer := c.cur != nil && !c.st.busy && !c.st.closing() && !c.st.hijacked() && !c.st.eof &&
			!c.w.q.closed.Load() && c.w.q.queued.Load() == 0 && c.gc.OutboundBuffered() == 0
		c.setReason(CloseInternalError, "internal error on the event loop")
		if answer {
			c.answerInternalError()
		}
		c.close(CloseInternalError, "")
	}
}

// answerInternalError sends the 500 of a request the loop failed on. A
// second panic, in a state the first left, only loses the answer. Loop
// only.
func (c *conn) answerInternalError() {
	defer func() {
		if p := recover(); p != nil {
			c.e.log.Error("internal error answering an internal error", "remote", c.w.remoteStr, "panic", p)
		}
	}()
	c.answerUnserved(http.StatusInternalServerError, "The server encountered an unexpected internal server error",
		CloseInternalError, c.refusedHead())
}

func (c *conn) input() []byte {
	if c.st.eof {
		if c.rare == nil {
			return nil
		}
		return c.rare.saved
	}
	if t := c.w.tls; t != nil {
		if len(t.pending()) < bodyPeek {
			c.tlsFill(bodyPeek)
		}
		return t.pending()
	}
	if c.rd.InBody() {
		// A body's bytes are looked at a piece at a time: when they wait in
		// gnet's inbound buffer (the spooler was behind), a look at all of
		// them would copy all of them into one new slice, on every look.
		if n := c.gc.InboundBuffered(); n > bodyPeek {
			b, _ := c.gc.Peek(bodyPeek)
			return b
		}
	}
	b, _ := c.gc.Peek(-1)
	return b
}

// bodyPeek is the most body bytes the loop looks at in one go.
const bodyPeek = 256 << 10

func (c *conn) consume(n int) {
	if n <= 0 {
		return // gnet's Discard(0) would drop the whole buffer
	}
	if c.st.eof {
		c.rare.saved = c.rare.saved[n:] // n > 0: input() gave saved bytes
		return
	}
	if c.w.tls != nil {
		c.w.tls.consume(n)
		return
	}
	_, _ = c.gc.Discard(n)
}

// inBuffered returns the input read but not consumed: gnet's inbound
// buffer, and on a TLS connection the plaintext not consumed yet. Loop
// only.
func (c *conn) inBuffered() int {
	n := c.gc.InboundBuffered()
	if t := c.w.tls; t != nil {
		n += len(t.pending())
	}
	return n
}

// discardInput drops the input read but not consumed. Loop only.
func (c *conn) discardInput() {
	_, _ = c.gc.Discard(-1)
	if t := c.w.tls; t != nil && t.pt != nil {
		t.consume(len(t.pending()))
	}
}

// headSlot holds a request head and the bytes its spans point into. A
// connection has at most two: one with the worker, one being parsed.
type headSlot struct {
	head codec.Head
	buf  []byte
}

// request is a complete request not yet handed to a worker; its Exchange
// comes in the same allocation. The loop fills it and hands it over (the
// dispatch queue); from then on it is the worker's, until recycle gives
// it back.
type request struct {
	x     adapter.Exchange
	body  *bodyBuffer
	slot  *headSlot
	w     *writer    // the connection, as its worker sees it
	start stamp      // when it was complete and dispatched
	burst []*request // set on a burst's first request: the burst, this one first (see batch)
	turn  turn       // set on the first request handed to a worker (see conn.start)
}

// run serves r, or the burst it starts, on worker wk.
func (r *request) run(wk *worker) {
	w := r.w
	e := w.e
	t := &r.turn
	t.wk, t.first = wk, r
	defer w.contain(t)
	if burst := r.burst; burst != nil {
		e.serveBatch(&r.turn, burst, wk)
		recycle(w, burst) // r among them
		putBurst(burst)
		return
	}
	e.serve(r, wk)
	one := [1]*request{r}
	recycle(w, one[:])
}

// contain stops a panic in waitron's own worker-side code (a handler's
// panics are the adapter's to answer) from leaving the worker: uncaught,
// ants would swallow it and the worker's place in threads, and its
// request's flight, would never be given back, so Shutdown would wait
// forever. It is logged, the connection is closed (what was sent of the
// response may be incomplete) and the flight of turn t ends; the worker
// goes on with the next task. A panic here is a bug. Worker only.
func (w *writer) contain(t *turn) {
	p := recover()
	if p == nil {
		return
	}
	w.e.log.Error("internal error on a worker; closing the connection", "remote", w.remoteStr,
		"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
	w.close(CloseInternalError)
	if t.w != nil && !t.ended { // (a zero turn: recycled, so its end was pushed)
		_, _ = w.push(t, piece{end: true}) // the loop completes the turn, unless it is over already
	}
}

// spareRecords holds the requests' records beyond what their loops keep
// (spares). Once served, nothing holds one: a fasthttp handler saw only
// the pooled RequestCtx; what a net/http handler may keep (its Request,
// context, URL and ResponseWriter) is in the request's own
// adapter.HTTPState, which the record only points to; and the loop keeps
// only c.next, a later request. Reusing them saves an allocation of a
// few hundred bytes per request.
var spareRecords = sync.Pool{New: func() any { return new(request) }}

// recycle gives served requests' records back to w's loop. Their worker
// only.
func recycle(w *writer, rs []*request) {
	for _, r := range rs {
		*r = request{}
	}
	w.spare.giveBack(nil, rs)
}
