// Package ops is the operations side of a waitron server: its Prometheus
// collector and the operations listener that serves /metrics, /healthz and
// /readyz apart from the application, on a plain net/http server.
package ops

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/waitron/waitron/internal/sockopt"
)

// Snapshot is what a server reports at one scrape.
type Snapshot struct {
	Open, Parked    int64
	Running, Queued int
	WritesBlocked   int64
	Closed          map[string]uint64 // by close reason
	Requests        []Requests
	Buckets         []float64 // upper bounds, seconds
	Durations       []uint64  // one per bucket, then one above every bound
	DurationSum     time.Duration
	BytesIn         uint64
	BytesOut        uint64
	Restarts        uint64
	AcceptErrors    uint64
	SpooledBodies   uint64
	SpooledBodyB    uint64
	SpooledOutputs  uint64
	SpooledOutputB  uint64
	Shed            uint64
}

// Requests is a count of responses to one method in one status class.
type Requests struct {
	Method, StatusClass string
	Count               uint64
}

var (
	dRequests  = prometheus.NewDesc("waitron_requests_total", "Responses sent, by request method and status class.", []string{"method", "code"}, nil)
	dDuration  = prometheus.NewDesc("waitron_request_duration_seconds", "Time from a request being complete to its response handed over.", nil, nil)
	dRunning   = prometheus.NewDesc("waitron_handlers_running", "Workers running handlers now (at most threads; hijacked handlers not counted).", nil, nil)
	dQueued    = prometheus.NewDesc("waitron_dispatch_queue_depth", "Complete requests waiting for a worker (waitress's task queue depth).", nil, nil)
	dBlocked   = prometheus.NewDesc("waitron_writes_blocked", "Handlers blocked now in a Write because their client reads slower than they write (outbuf_high_watermark).", nil, nil)
	dOpen      = prometheus.NewDesc("waitron_connections_open", "Client connections open now, parked ones included.", nil, nil)
	dParked    = prometheus.NewDesc("waitron_connections_parked", "Connections waiting unread for a slot under connection_limit.", nil, nil)
	dClosed    = prometheus.NewDesc("waitron_connections_closed_total", "Client connections closed, by reason.", []string{"reason"}, nil)
	dRefused   = prometheus.NewDesc("waitron_connections_refused_total", "Connections refused over connection_limit (503), the overload close reason.", nil, nil)
	dBytesIn   = prometheus.NewDesc("waitron_received_bytes_total", "Bytes read from clients.", nil, nil)
	dBytesOut  = prometheus.NewDesc("waitron_sent_bytes_total", "Bytes handed to clients' sockets.", nil, nil)
	dRestarts  = prometheus.NewDesc("waitron_event_loop_restarts_total", "Restarts of the event loops after they stopped on their own (a failure inside gnet).", nil, nil)
	dAcceptErr = prometheus.NewDesc("waitron_accept_errors_total", "Accepts that failed (EMFILE, ENFILE, ENOBUFS …); each pauses its listener, and open connections are kept.", nil, nil)
	dBodies    = prometheus.NewDesc("waitron_spooled_bodies_total", "Request bodies spooled to a temporary file (inbuf_overflow).", nil, nil)
	dBodyB     = prometheus.NewDesc("waitron_spooled_body_bytes_total", "Bytes of the request bodies spooled to a file.", nil, nil)
	dOutputs   = prometheus.NewDesc("waitron_spooled_outputs_total", "Responses whose output overflowed to a temporary file (outbuf_overflow).", nil, nil)
	dShed      = prometheus.NewDesc("waitron_requests_shed_total", "Requests answered 503 without running their handler because too many waited for a worker, or waited too long (queue_limit, queue_timeout).", nil, nil)
	dOutputB   = prometheus.NewDesc("waitron_spooled_output_bytes_total", "Bytes of response output that went through such files.", nil, nil)
)

type collector struct{ snap func() Snapshot }

// NewCollector returns a prometheus.Collector of the server whose figures
// snap returns; every metric is named waitron_….
func NewCollector(snap func() Snapshot) prometheus.Collector { return collector{snap} }

func (collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{dRequests, dDuration, dRunning, dQueued, dBlocked, dOpen, dParked, dClosed, dRefused,
		dBytesIn, dBytesOut, dRestarts, dAcceptErr, dBodies, dBodyB, dOutputs, dOutputB, dShed} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	s := c.snap()
	for _, r := range s.Requests {
		ch <- prometheus.MustNewConstMetric(dRequests, prometheus.CounterValue, float64(r.Count), r.Method, r.StatusClass)
	}
	buckets := make(map[float64]uint64, len(s.Buckets))
	var count uint64
	for i, b := range s.Buckets {
		count += s.Durations[i]
		buckets[b] = count
	}
	count += s.Durations[len(s.Buckets)]
	ch <- prometheus.MustNewConstHistogram(dDuration, count, s.DurationSum.Seconds(), buckets)
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	gauge(dRunning, float64(s.Running))
	gauge(dQueued, float64(s.Queued))
	gauge(dBlocked, float64(s.WritesBlocked))
	gauge(dOpen, float64(s.Open))
	gauge(dParked, float64(s.Parked))
	for reason, n := range s.Closed {
		ch <- prometheus.MustNewConstMetric(dClosed, prometheus.CounterValue, float64(n), reason)
	}
	counter(dRefused, s.Closed["overload"])
	counter(dBytesIn, s.BytesIn)
	counter(dBytesOut, s.BytesOut)
	counter(dRestarts, s.Restarts)
	counter(dAcceptErr, s.AcceptErrors)
	counter(dBodies, s.SpooledBodies)
	counter(dBodyB, s.SpooledBodyB)
	counter(dOutputs, s.SpooledOutputs)
	counter(dOutputB, s.SpooledOutputB)
	counter(dShed, s.Shed)
}

// Server is a running operations listener.
type Server struct {
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
}

// Start listens on addr and serves /metrics (the collector, with Go's
// runtime and process collectors), /healthz (200 while alive() is true)
// and /readyz (200 while ready() is true, else 503). With reusePort the
// listener shares its port with other processes bound the same way
// (SO_REUSEPORT), as the server's own listeners do under reuse_port, so a
// successor process can start beside the one it replaces.
func Start(addr string, reusePort bool, c prometheus.Collector, alive, ready func() bool, log *slog.Logger) (*Server, error) {
	reg := prometheus.NewRegistry()
	if err := reg.Register(c); err != nil {
		return nil, err
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}))
	probe := func(ok func() bool, what string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			if !ok() {
				w.WriteHeader(http.StatusServiceUnavailable)
				w.Write([]byte("not " + what + "\n"))
				return
			}
			w.Write([]byte(what + "\n"))
		}
	}
	mux.Handle("GET /healthz", probe(alive, "alive"))
	mux.Handle("GET /readyz", probe(ready, "ready"))
	var lc net.ListenConfig
	if reusePort {
		lc.Control = sockopt.ReusePort
	}
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}, ln: ln, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("the operations listener stopped", "addr", addr, "err", err)
		}
	}()
	log.Info("Operations (metrics, health) on http://" + ln.Addr().String())
	return s, nil
}

// Addr is the address the listener is bound to.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Stop closes the listener and waits for the requests being answered.
func (s *Server) Stop(ctx context.Context) {
	_ = s.srv.Shutdown(ctx)
	<-s.done
}
