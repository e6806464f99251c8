package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// Counters kept for Stats (and the Prometheus collector built on it). Each
// is one atomic add where it happens: per response, per read, per close,
// per spool; nothing is counted on the request path beyond that.

// methodNames are the methods counted by name; any other is "other".
var methodNames = [...]string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
	http.MethodDelete, http.MethodOptions, http.MethodPatch, http.MethodConnect, http.MethodTrace, "other"}

const numMethods = len(methodNames)

// statusClasses are the response status classes counted.
var statusClasses = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx"}

// DurationBuckets are the upper bounds, in seconds, of the request-duration
// histogram (Stats.Durations).
var DurationBuckets = [...]float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// durationBounds is DurationBuckets as durations, for comparing a
// response's duration without converting it to seconds.
var durationBounds = func() (b [len(DurationBuckets)]time.Duration) {
	for i, s := range DurationBuckets {
		b[i] = time.Duration(math.Round(s * float64(time.Second)))
	}
	return b
}()

type counters struct {
	requests     [numMethods][len(statusClasses)]atomic.Uint64
	durations    [len(DurationBuckets) + 1]atomic.Uint64 // the last: above every bound
	durSum       atomic.Int64                            // nanoseconds
	bytesIn      atomic.Uint64
	bytesOut     atomic.Uint64
	restarts     atomic.Uint64
	acceptErrors atomic.Uint64 // accepts that failed (EMFILE …), each followed by a pause
	bodySpool    atomic.Uint64 // request bodies spooled to a file
	bodyBytes    atomic.Uint64 // bytes of those bodies
	outSpool     atomic.Uint64 // responses whose output overflowed to a file
	outBytes     atomic.Uint64 // bytes of output that went through such files
	blocked      atomic.Int64  // handlers blocked now in a Write by outbuf_high_watermark
	fileBytes    atomic.Uint64 // response bytes sent from a file (spooled body or handler's) with sendfile
	shed         atomic.Uint64 // requests answered 503 without their handler (queue_limit, queue_timeout)
}

func methodIndex(m []byte) int {
	for i, n := range methodNames[:numMethods-1] {
		if string(m) == n {
			return i
		}
	}
	return numMethods - 1
}

// response counts one response to the method of index method
// (methodIndex) with status, served in d.
func (k *counters) response(method, status int, d time.Duration) {
	if class := classOf(status); class >= 0 {
		k.requests[method][class].Add(1)
	}
	k.durations[bucketOf(d)].Add(1)
	k.durSum.Add(int64(d))
}

// classOf returns the index in statusClasses of status's class, or -1.
func classOf(status int) int {
	if class := status/100 - 1; class >= 0 && class < len(statusClasses) {
		return class
	}
	return -1
}

// bucketOf returns the index in durations of d's bucket.
func bucketOf(d time.Duration) int {
	i := 0
	for i < len(durationBounds) && d > durationBounds[i] {
		i++
	}
	return i
}

// tally counts the responses a pipelined burst's write settles at once:
// a run of alike responses (one method and status class, one duration
// bucket) costs one atomic add per counter instead of one each. Worker
// only; flush before it goes.
type tally struct {
	k                     *counters
	method, class, bucket int
	n, inBucket           uint64
	sum                   int64
}

// add counts one response, as counters.response does.
func (t *tally) add(method, status int, d time.Duration) {
	class := classOf(status)
	if t.n > 0 && (method != t.method || class != t.class) {
		t.flushRequests()
	}
	t.method, t.class = method, class
	t.n++
	b := bucketOf(d)
	if t.inBucket > 0 && b != t.bucket {
		t.flushBucket()
	}
	t.bucket = b
	t.inBucket++
	t.sum += int64(d)
}

func (t *tally) flushRequests() {
	if t.n > 0 && t.class >= 0 {
		t.k.requests[t.method][t.class].Add(t.n)
	}
	t.n = 0
}

func (t *tally) flushBucket() {
	if t.inBucket > 0 {
		t.k.durations[t.bucket].Add(t.inBucket)
	}
	t.inBucket = 0
}

// flush adds what t holds to its counters.
func (t *tally) flush() {
	t.flushRequests()
	t.flushBucket()
	if t.sum != 0 {
		t.k.durSum.Add(t.sum)
		t.sum = 0
	}
}

// RequestCount is the number of responses to one method with one status
// class.
type RequestCount struct {
	Method      string // GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH, CONNECT, TRACE or other
	StatusClass string // 1xx … 5xx
	Count       uint64
}

// fill adds the counters to st.
func (k *counters) fill(st *Stats) {
	for m := range k.requests {
		for c := range k.requests[m] {
			if n := k.requests[m][c].Load(); n > 0 {
				st.Requests = append(st.Requests, RequestCount{methodNames[m], statusClasses[c], n})
			}
		}
	}
	st.Durations = make([]uint64, len(k.durations))
	for i := range k.durations {
		st.Durations[i] = k.durations[i].Load()
	}
	st.DurationSum = time.Duration(k.durSum.Load())
	st.BytesIn, st.BytesOut = k.bytesIn.Load(), k.bytesOut.Load() // BytesIn: plus the loops' own (Stats)
	st.Restarts = k.restarts.Load()
	st.AcceptErrors = k.acceptErrors.Load()
	st.SpooledBodies, st.SpooledBodyBytes = k.bodySpool.Load(), k.bodyBytes.Load()
	st.SpooledOutputs, st.SpooledOutputBytes = k.outSpool.Load(), k.outBytes.Load()
	st.WritesBlocked = k.blocked.Load()
	st.SentFromFile = k.fileBytes.Load()
	st.Shed = k.shed.Load()
}

// OpsListener is a running operations listener (metrics_listen).
type OpsListener interface {
	Addr() net.Addr
	Stop(ctx context.Context)
}

// OpsStarter starts the operations listener of metrics_listen for s on
// addr (with SO_REUSEPORT when reusePort), serving /healthz while alive and
// /readyz while ready.
type OpsStarter func(s *Server, addr string, reusePort bool, alive, ready func() bool, log *slog.Logger) (OpsListener, error)

// opsStarter is the metrics package's (RegisterOps): the engine links no
// Prometheus code of its own, so a program that never asks for metrics
// links none.
var opsStarter OpsStarter

// RegisterOps installs how metrics_listen is served; the metrics package
// calls it as it initialises. Not safe to call while servers are created.
func RegisterOps(f OpsStarter) { opsStarter = f }

// errNoOps is New's answer to metrics_listen in a program without the
// metrics package.
var errNoOps = errors.New(`waitron: metrics_listen needs the metrics package in the program: import _ "github.com/waitron/waitron/metrics" (the waitron command has it)`)

// startOps starts the operations listener of metrics_listen, if set.
func (s *Server) startOps() (OpsListener, error) {
	if s.opts.MetricsListen == "" {
		return nil, nil
	}
	if opsStarter == nil {
		return nil, errNoOps
	}
	alive := func() bool { return !s.stopping.Load() } // until the event loops are told to stop
	ready := func() bool { return s.isReady() && s.readyErr == nil && !s.draining.Load() }
	o, err := opsStarter(s, s.opts.MetricsListen, s.opts.ReusePort, alive, ready, s.log)
	if err != nil {
		return nil, fmt.Errorf("waitron: metrics_listen: %w", err)
	}
	return o, nil
}

// OpsAddr returns the address of the operations listener (metrics_listen),
// or nil, once Ready is closed.
func (s *Server) OpsAddr() net.Addr {
	<-s.ready
	if s.ops == nil {
		return nil
	}
	return s.ops.Addr()
}
