package engine

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/waitron/waitron/codec"
	"github.com/waitron/waitron/internal/adapter"
)

// accessLog writes one line per response (access_log). Callers format
// their line and append it to a shared buffer under a mutex (no goroutine
// hand-off per line); a writer goroutine takes the buffer every
// accessFlush, or as soon as it passes accessChunk, and writes it out.
// Workers wait while accessLimit bytes are waiting (the disk is slower
// than the traffic); the event loop, which answers the requests the parser
// refuses, never waits: its line is then counted as dropped. Shutdown
// writes everything out.
type accessLog struct {
	json    bool
	out     io.Writer
	file    *os.File // closed at the end, unless standard output
	logger  *slog.Logger
	dropped atomic.Uint64

	mu      sync.Mutex
	room    sync.Cond // signalled when the writer took the buffer
	pending []byte
	stopped bool
	kick    chan struct{}   // the buffer passed accessChunk
	reopen  chan chan error // ReopenAccessLog's requests, served by the writer goroutine
	path    string
	stop    chan struct{}
	done    chan struct{}
	stamp   atomic.Pointer[logTime]
}

const (
	accessFlush = 100 * time.Millisecond
	accessChunk = 64 << 10
	accessLimit = 4 << 20
)

// logTime is a second's timestamp in the combined format, made once.
type logTime struct {
	sec int64
	s   []byte
}

// openAccessLog opens the access log at path ("-": standard output) in
// format; wrap, if set, wraps the JSON format's handler (tests).
func openAccessLog(path, format string, wrap func(slog.Handler) slog.Handler) (*accessLog, error) {
	a := &accessLog{json: format == "json", kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		reopen: make(chan chan error), path: path}
	a.room.L = &a.mu
	if path == "-" {
		a.out = os.Stdout
	} else {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return nil, err
		}
		a.out, a.file = f, f
	}
	if a.json {
		var h slog.Handler = slog.NewJSONHandler(lineWriter{a}, nil)
		if wrap != nil {
			h = wrap(h)
		}
		a.logger = slog.New(h)
	}
	go a.run()
	return a, nil
}

// run writes what is pending every accessFlush, or when kicked.
func (a *accessLog) run() {
	defer close(a.done)
	tick := time.NewTicker(accessFlush)
	defer tick.Stop()
	var spare []byte
	for {
		stopping := false
		var reopened chan error
		select {
		case <-tick.C:
		case <-a.kick:
		case reopened = <-a.reopen:
		case <-a.stop:
			stopping = true
		}
		a.mu.Lock()
		b := a.pending
		a.pending = spare[:0]
		a.room.Broadcast()
		a.mu.Unlock()
		if len(b) > 0 {
			_, _ = a.out.Write(b)
		}
		spare = b
		if reopened != nil {
			reopened <- a.reopenFile()
		}
		if stopping {
			if a.file != nil {
				a.file.Close()
			}
			return
		}
	}
}

// reopenFile opens the log's path again and writes there from now on,
// closing the file it wrote to (logrotate has moved it away). On an error
// it goes on with the old file. The writer goroutine only.
func (a *accessLog) reopenFile() error {
	if a.file == nil {
		return nil // standard output
	}
	f, err := os.OpenFile(a.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	a.file.Close()
	a.out, a.file = f, f
	return nil
}

// close writes what is pending and closes the file; later lines are
// dropped (a hijacked handler finishing after Serve returned).
func (a *accessLog) close() {
	a.mu.Lock()
	a.stopped = true
	a.room.Broadcast()
	a.mu.Unlock()
	close(a.stop)
	<-a.done
}

// put appends line; wait says whether the caller may wait for room.
func (a *accessLog) put(line []byte, wait bool) {
	a.mu.Lock()
	for len(a.pending) > accessLimit && !a.stopped {
		if !wait {
			a.mu.Unlock()
			a.dropped.Add(1)
			return
		}
		a.room.Wait()
	}
	if a.stopped {
		a.mu.Unlock()
		return
	}
	a.pending = append(a.pending, line...)
	full := len(a.pending) >= accessChunk
	a.mu.Unlock()
	if full {
		select {
		case a.kick <- struct{}{}:
		default:
		}
	}
}

// timestamp returns now in the combined format, "02/Jan/2006:15:04:05 -0700".
func (a *accessLog) timestamp(now time.Time) []byte {
	sec := now.Unix()
	if t := a.stamp.Load(); t != nil && t.sec == sec {
		return t.s
	}
	t := &logTime{sec: sec, s: now.AppendFormat(nil, "02/Jan/2006:15:04:05 -0700")}
	a.stamp.Store(t)
	return t.s
}

// lineWriter hands each record the JSON handler writes to the queue.
type lineWriter struct{ a *accessLog }

func (l lineWriter) Write(p []byte) (int, error) {
	l.a.put(p, true)
	return len(p), nil
}

// entry is one response, as logged.
type entry struct {
	remote, method, target, proto string
	referer, agent                string
	status                        int
	bytes                         int64
	dur                           time.Duration
	close                         string // the close reason, when the connection closes
}

// host returns the client address without its port (Apache's %h).
func host(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// log writes e; wait as for put.
func (a *accessLog) log(e *entry, wait bool) {
	now := time.Now()
	e.remote = host(e.remote)
	if a.json {
		attrs := []slog.Attr{slog.String("remote", e.remote), slog.String("method", e.method),
			slog.String("uri", e.target), slog.String("proto", e.proto), slog.Int("status", e.status),
			slog.Int64("bytes", e.bytes), slog.Float64("duration_s", e.dur.Seconds()),
			slog.String("referer", e.referer), slog.String("user_agent", e.agent)}
		if e.close != "" {
			attrs = append(attrs, slog.String("close", e.close))
		}
		if !wait { // the loop: a record formatted here, queued without waiting
			var b []byte
			h := slog.NewJSONHandler(&sliceWriter{&b}, nil)
			r := slog.NewRecord(now, slog.LevelInfo, "request", 0)
			r.AddAttrs(attrs...)
			_ = h.Handle(context.Background(), r)
			a.put(b, false)
			return
		}
		a.logger.LogAttrs(context.Background(), slog.LevelInfo, "request", attrs...)
		return
	}
	var arr [512]byte
	b := append(arr[:0], dash(e.remote)...)
	b = append(b, " - - ["...)
	b = append(b, a.timestamp(now)...)
	b = append(b, "] \""...)
	b = appendSafe(b, e.method)
	b = append(b, ' ')
	b = appendSafe(b, e.target)
	b = append(b, ' ')
	b = appendSafe(b, e.proto)
	b = append(b, "\" "...)
	b = strconv.AppendInt(b, int64(e.status), 10)
	b = append(b, ' ')
	if e.bytes > 0 {
		b = strconv.AppendInt(b, e.bytes, 10)
	} else {
		b = append(b, '-')
	}
	b = append(b, " \""...)
	b = appendSafe(b, dash(e.referer))
	b = append(b, "\" \""...)
	b = appendSafe(b, dash(e.agent))
	b = append(b, "\" "...)
	b = strconv.AppendFloat(b, e.dur.Seconds(), 'f', 6, 64)
	if e.close != "" {
		b = append(b, " close="...)
		b = append(b, e.close...)
	}
	b = append(b, '\n')
	a.put(b, wait)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// appendSafe appends s with quotes, backslashes and control characters
// escaped (as Apache does), so a client cannot forge log lines.
func appendSafe(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20 || c == 0x7f:
			b = append(b, '\\', 'x', hex[c>>4], hex[c&15])
		default:
			b = append(b, c)
		}
	}
	return b
}

type sliceWriter struct{ b *[]byte }

func (w *sliceWriter) Write(p []byte) (int, error) {
	*w.b = append(*w.b, p...)
	return len(p), nil
}

// served is what the access log needs of a request's head, taken before
// it is served (the head may be reused once the response is out).
type servedHead struct{ method, target, proto string }

func headOf(x *adapter.Exchange) servedHead { return headOfCodec(x.Head) }

// headOfCodec copies h's request line.
func headOfCodec(h *codec.Head) servedHead {
	return servedHead{string(h.MethodBytes()), string(h.TargetBytes()), proto(h.Minor)}
}

// logServed logs the response to r, whose head was h. A response cut
// short (the client or the server closed the connection under it) is
// logged with the bytes the client took of it, when known (the request
// began a turn: its bytes are those taken after the turn began, head
// included), never more than its body. Worker only, after adapter.Serve.
func (v *env) logServed(r *request, h servedHead, d time.Duration) {
	a, w, x := v.access, r.w, &r.x
	o := x.Outcome()
	if o.ClientGone && r.turn.w != nil {
		if n, closed := w.takenSince(r.turn.handedAt); closed {
			o.Bytes = min(o.Bytes, n)
		}
	}
	e := entry{status: o.Status, bytes: o.Bytes, dur: d}
	switch req := o.Request; {
	case req != nil:
		e.remote, e.method, e.target, e.proto = req.RemoteAddr, req.Method, req.RequestURI, req.Proto
		e.referer, e.agent = req.Referer(), req.UserAgent()
	case o.Remote != "": // the fasthttp adapter's
		e.remote, e.method, e.target, e.proto = o.Remote, h.method, h.target, h.proto
		e.referer, e.agent = o.Referer, o.UserAgent
	default:
		e.remote, e.method, e.target, e.proto = x.RemoteStr, h.method, h.target, h.proto
	}
	switch r, byServer := w.serverReason(); {
	case o.ClientGone && byServer:
		e.close = r.String() // the server cut it (send_timeout, a spool that failed, …), not the client
	case o.ClientGone:
		e.close = CloseClientReset.String()
	case o.ForShutdown:
		e.close = CloseShutdown.String()
	case o.Closes && o.Status >= 400 && !o.Handled:
		e.close = CloseBadRequest.String()
	case o.Closes:
		e.close = CloseRequested.String()
	}
	a.log(&e, true)
}

func proto(minor int) string { return protos[minor] }

// protos are the request versions the codec accepts, by minor digit.
var protos = [10]string{"HTTP/1.0", "HTTP/1.1", "HTTP/1.2", "HTTP/1.3", "HTTP/1.4", "HTTP/1.5", "HTTP/1.6",
	"HTTP/1.7", "HTTP/1.8", "HTTP/1.9"}

// logRefused logs a request answered on the loop without being served
// (the parser refused it, or the loop failed reading it), closing the
// connection for reason. Loop only: never waits.
func (c *conn) logRefused(status int, size int, reason CloseReason, rh servedHead) {
	if c.e.access == nil {
		return
	}
	e := entry{remote: c.w.remoteStr, method: rh.method, target: rh.target, proto: rh.proto, status: status,
		bytes: int64(size), close: reason.String()}
	c.e.access.log(&e, false)
}
