package engine

import (
	"errors"
	"io"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

// CloseReason is why a client connection closed. Every close has one; each
// is counted (Server.Stats) and named in the debug log line of the close.
type CloseReason uint8

// The reasons, documented where users read them: the root package's
// constants of the same names (waitron.CloseClientClosed …), which mirror
// these in order.
const (
	CloseClientClosed CloseReason = iota
	CloseClientReset
	CloseClientHalfClosed
	CloseRequested
	CloseBadRequest
	CloseIdle
	CloseHeaderTimeout
	CloseBodyTimeout
	CloseSendTimeout
	ClosePipelineOverflow
	CloseOverload
	CloseShutdown
	CloseHijacked
	CloseProxyProtocol
	CloseInternalError
	CloseSpoolFull
	CloseServerRestart
	CloseTLSHandshake
	CloseTLSHandshakeTimeout
	CloseTLSError
	CloseTLSCloseNotify
	CloseTLSRenegotiation

	numCloseReasons
)

var closeReasonNames = [numCloseReasons]string{
	"client_closed", "client_reset", "client_half_closed", "requested", "bad_request", "idle",
	"header_timeout", "body_timeout", "send_timeout", "pipeline_overflow", "overload", "shutdown",
	"hijacked", "proxy_protocol", "internal_error", "spool_full", "server_restart",
	"tls_handshake", "tls_handshake_timeout", "tls_error", "tls_close_notify", "tls_renegotiation",
}

// String returns the reason's name, as used in logs and metric labels
// (client_closed, bad_request, …).
func (r CloseReason) String() string {
	if r < numCloseReasons {
		return closeReasonNames[r]
	}
	return "unknown"
}

// CloseReasons returns every reason, in order.
func CloseReasons() []CloseReason {
	rs := make([]CloseReason, numCloseReasons)
	for i := range rs {
		rs[i] = CloseReason(i)
	}
	return rs
}

// closeCounts counts closed connections by reason. Any goroutine.
type closeCounts [numCloseReasons]atomic.Uint64

// Stats is a snapshot of what a server has done since New (counters) and
// of where it is now (gauges). The root package's Stats has the same
// fields (it converts this one) and documents each.
type Stats struct {
	Open, Parked                                                        int64
	Running, Queued                                                     int
	WritesBlocked                                                       int64
	Draining                                                            bool
	Closed                                                              map[CloseReason]uint64
	Requests                                                            []RequestCount
	Durations                                                           []uint64
	DurationSum                                                         time.Duration
	BytesIn, BytesOut                                                   uint64
	Restarts                                                            uint64
	AcceptErrors                                                        uint64
	SpooledBodies, SpooledBodyBytes, SpooledOutputs, SpooledOutputBytes uint64
	SentFromFile                                                        uint64
	Shed                                                                uint64
}

// Stats returns a snapshot of the server's counters and gauges. Any
// goroutine.
func (s *Server) Stats() Stats {
	st := Stats{Closed: make(map[CloseReason]uint64, numCloseReasons), Draining: s.draining.Load()}
	if g := s.gen.Load(); g != nil {
		st.Open = g.conns.Load()
		if s.h2 != nil {
			st.Open += s.h2.open.Load()
		}
		g.adm.mu.Lock()
		st.Parked = int64(len(g.adm.parked))
		g.adm.mu.Unlock()
	}
	st.Running, st.Queued = s.disp.load()
	for i := range s.closes {
		st.Closed[CloseReason(i)] = s.closes[i].Load()
	}
	s.counts.fill(&st)
	s.loops.Range(func(_, v any) bool {
		st.BytesIn += v.(*loopConns).bytesIn.Load()
		return true
	})
	return st
}

// setReason records why the server closes the connection, in its one
// slot: the loop (conn.setReason) and the worker side (a write deadline
// passed, a spool that could not be written) both give theirs here, and
// the first stands. It reports whether r was the first. Any goroutine.
func (w *writer) setReason(r CloseReason) bool {
	return w.reason.CompareAndSwap(0, uint32(r)+1)
}

// serverReason returns the reason the server gave for closing the
// connection, if it gave one. Any goroutine.
func (w *writer) serverReason() (CloseReason, bool) {
	r := w.reason.Load()
	return CloseReason(r - 1), r != 0
}

// closeReason decides, at gnet's close, why the connection closed: the
// reason the server gave when it started the close, else what gnet saw.
// Loop only.
func (c *conn) closeReason(err error) CloseReason {
	r, given := c.w.serverReason()
	switch {
	case given:
		return r
	case c.e.stopping.Load() || c.e.draining.Load():
		return CloseShutdown
	case err == nil || errors.Is(err, io.EOF):
		return CloseClientClosed
	default:
		return CloseClientReset
	}
}

// noteDelivered records, as the connection closes, how many of the bytes
// handed over the client took: all but what gnet still held and what the
// kernel had not sent or had not had acknowledged (SIOCOUTQ). The first
// record stands: the server's own close makes it before its handler can
// hear of the close, and OnClose otherwise. Loop only, while the
// descriptor is open.
func (w *writer) noteDelivered(gc gnet.Conn) {
	if w.taken.Load() != 0 {
		return
	}
	n := w.q.handed.Load() - int64(gc.OutboundBuffered())
	if q, err := unix.IoctlGetInt(gc.Fd(), unix.SIOCOUTQ); err == nil {
		n -= int64(q)
	}
	w.taken.Store(max(n, 0) + 1)
}

// takenSince returns how many bytes handed over after the connection had
// handedAt the client took before the connection closed; false while it
// is open. Any goroutine.
func (w *writer) takenSince(handedAt int64) (int64, bool) {
	t := w.taken.Load()
	return max(t-1-handedAt, 0), t != 0
}
