package engine

import (
	"time"

	"github.com/waitron/waitron/limits"
)

// config is what the event loops and workers need of the options, compiled
// once by New: nothing on the request path reads limits.Options or
// converts units. (Serve's setup — listeners, the access log, the metrics
// listener, the startup notes — reads the options themselves.)
type config struct {
	maxHead        int   // max_request_header_size: a request head, and a chunked body's trailer section
	maxBody        int64 // max_request_body_size, on decoded bytes
	inbufOverflow  int   // a request body larger than this is spooled to a file
	pipelineLimit  int   // bytes a client may send ahead while its request is served
	outbufOverflow int64 // pending output beyond this goes to a file…
	outbufLow      int64 // …until the pending output falls below this
	outbufHigh     int64 // a handler's Write blocks while more than this is pending
	connLimit      int
	backlog        int // clients waiting for a slot, at most
	headTimeout    time.Duration
	bodyTimeout    time.Duration
	bodyMinRate    float64 // bytes per second; 0: off
	sendTimeout    time.Duration
	idleTimeout    time.Duration // channel_timeout
	sweepEvery     time.Duration // how often idle connections are looked for
	proxyProtocol  bool
	logSocketErrs  bool
	queueLimit     int64         // queue_limit: requests waiting for a worker, at most; 0: no bound
	queueTimeout   time.Duration // queue_timeout: how long one may wait; 0: no bound
	h2c            bool          // a connection that opens with the HTTP/2 preface goes to the HTTP/2 server
}

func compile(o *limits.Options) config {
	return config{
		maxHead:        o.MaxRequestHeaderSize,
		maxBody:        o.MaxRequestBodySize,
		inbufOverflow:  o.InbufOverflow,
		pipelineLimit:  o.MaxRequestHeaderSize + o.InbufOverflow,
		outbufOverflow: int64(o.OutbufOverflow),
		outbufLow:      int64(o.OutbufOverflow / 2),
		outbufHigh:     int64(o.OutbufHighWatermark),
		connLimit:      o.ConnectionLimit,
		backlog:        o.Backlog,
		headTimeout:    o.RequestHeaderTimeout,
		bodyTimeout:    o.RequestBodyTimeout,
		bodyMinRate:    float64(o.RequestBodyMinRate),
		sendTimeout:    o.SendTimeout,
		idleTimeout:    o.ChannelTimeout,
		sweepEvery:     max(o.CleanupInterval, o.AsyncoreLoopTimeout),
		proxyProtocol:  o.ProxyProtocol,
		logSocketErrs:  o.LogSocketErrors,
		queueLimit:     int64(o.QueueLimit),
		queueTimeout:   o.QueueTimeout,
	}
}
