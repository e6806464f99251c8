package adapter

// Life of a Write
//
// A handler's Write copies its bytes into the response's pending buffer
// (send_bytes long; a pooled 64 KiB slice by default). At WriteHeader (or
// the first Write) the handler's header map is written out into the head
// buffer, so later changes to the map do not count (trailers aside).
// Nothing reaches the connection until one of:
//
//  1. the handler returns: the head is completed with a Content-Length
//     equal to the pending bytes (unless the handler declared one; for HEAD
//     only when it wrote any), and head and body leave together in one
//     Output.Send marked last;
//  2. the handler calls Flush (directly or via http.ResponseController): the
//     head leaves with chunked framing on HTTP/1.1 — close-delimited on
//     HTTP/1.0, no framing at all for HEAD — unless the handler declared a
//     Content-Length;
//  3. the pending buffer fills: an implicit Flush;
//  4. the handler hijacks: what was flushed has reached the socket first; a
//     head decided but not sent (a 101) and its pending body are written
//     to the hijacked connection itself. A 101 never leaves otherwise: a
//     handler that returns without hijacking gets a 500 instead.
//
// A batch (pipelined requests served by one worker) holds back complete
// responses and sends them with the next output. The engine's Send then
// writes the slices to the socket from the worker itself while nothing of
// the connection is queued, buffered in gnet, spooled or with the
// half-close writer (the common case); otherwise, and for what the socket
// did not take, it hands them to the event loop with AsyncWritev, or, past
// outbuf_overflow, appends them to an output spool file that a feeder
// hands to gnet as the client drains. Once a client half-closes, a
// fallback writer on a duplicate descriptor carries the rest. Send blocks
// the handler while the connection has more than outbuf_high_watermark
// bytes pending, until the client is gone, or until the write deadline
// (ResponseController.SetWriteDeadline) passes.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/waitron/waitron/codec"
	"github.com/waitron/waitron/internal/bufpool"
)

// Output is the connection side of a response; the engine implements it.
type Output interface {
	// Send queues bufs for writing, in order, and takes ownership of them
	// (they come from bufpool and go back there once written), but not of
	// the slice holding them: its array is the caller's again once Send
	// returns, to reuse for the next call. last marks
	// the end of the response; keepAlive then says whether the connection
	// may serve another request. Send may block while too much output is
	// pending, and returns ErrClientGone once the client cannot receive,
	// or an error wrapping os.ErrDeadlineExceeded once blocked past the
	// write deadline.
	Send(bufs [][]byte, last, keepAlive bool) error
	// SetWriteDeadline bounds how long Send may block on a client that
	// does not read (zero: no bound) for the rest of this response.
	SetWriteDeadline(t time.Time)
	// Hijack takes the connection out of the server once everything Sent
	// has reached the socket, and returns it with the input already read
	// after the request. head, if any (pooled slices, Hijack's to recycle
	// whatever happens), is output that must leave only with the hijack —
	// a 101's head: it is sent once nothing but its own delivery stands in
	// the hijack's way. Send is not called again for this response.
	Hijack(head [][]byte) (net.Conn, []byte, error)
	// Refuse ends the response with the server's error response of
	// status (without a body for a HEAD request: head), which the engine
	// builds, and returns its size; the connection closes after it. It
	// is Send's last call for a response nothing of which was sent.
	Refuse(status int, detail string, head bool) (int64, error)
}

// Config is what the adapter needs from the server's options.
type Config struct {
	Ident            string
	ExposeTracebacks bool
	Log              *slog.Logger
	// AppendDate appends the current Date header value (cached by the server).
	AppendDate func([]byte) []byte
	// Draining reports whether the server is shutting down; responses then
	// close their connection.
	Draining func() bool
	// NoKeepAlive, if set, reports whether keep-alive is off
	// (SetKeepAlivesEnabled(false)): every response closes its
	// connection.
	NoKeepAlive func() bool
	// WriteTimeout, if set, is each response's write deadline from when
	// its handler starts (net/http's WriteTimeout).
	WriteTimeout time.Duration
	// PassOptionsStar gives "OPTIONS *" to the handler instead of
	// answering it (net/http's DisableGeneralOptionsHandler).
	PassOptionsStar bool
	// LogRequests asks the fasthttp adapter to keep what the access log
	// shows of a request in its Outcome.
	LogRequests bool
	// URLScheme, ServerName and URLPrefix are the options of those names,
	// reported through RequestInfo (URLPrefix is also stripped from paths).
	URLScheme, ServerName, URLPrefix string
	// TLSScheme is the scheme of requests over TLS: https, unless
	// url_scheme was set.
	TLSScheme string
	// Proxy applies the trusted_proxy options; nil applies nothing.
	Proxy *Proxy
	// SendBytes is the size of the pieces a response is handed over in
	// (send_bytes); output up to this size gets a Content-Length.
	SendBytes int
}

// ErrWriteAfterReturn is returned by Write and Flush once the handler has
// returned: the response is complete and nothing more can be added.
var ErrWriteAfterReturn = errors.New("waitron: write after the handler returned")

type response struct {
	cfg       *Config
	req       *http.Request
	out       Output
	minor     int
	isHead    bool
	continued bool // 100 Continue has been sent

	connCtx    context.Context // the connection's: ends when the client is gone
	closeCh    chan bool       // CloseNotify's, made when first asked
	stopNotify func() bool     // stops CloseNotify's watch of connCtx
	wdeadline  time.Time       // SetWriteDeadline's; zero: none

	header http.Header // the handler's map
	// At WriteHeader the map's fields are written out (after the status
	// line) into headBuf, and what the rest of the head depends on is
	// noted, so later changes to the map have no effect, as in net/http
	// (trailers aside), without copying the map.
	headBuf        []byte
	hasContentType bool
	hasDate        bool
	hasServer      bool
	extra          *respExtra // the Connection and Trailer values; nil while there are none
	status         int
	wroteHeader    bool        // a final (non-1xx) status is decided
	headSent       bool        // the head has been handed to Output
	hijacked       bool        // the handler took the connection
	done           atomic.Bool // the handler returned; read by writes from stray goroutines
	failed         bool        // Output reported the client gone

	chunked    bool
	closeAfter bool  // the connection closes after this response
	drainClose bool  // ... only because the server was shutting down when the head left
	declared   int64 // Content-Length set by the handler, or -1
	written    int64 // body bytes the handler wrote (and we accepted)
	pending    []byte
	lastBufs   [2][]byte // the slices of a final flush, as usual: head (with a short body), body
}

// respExtra is what few responses have: in response, its 72 bytes took
// HTTPState, allocated per request, from the 896-byte size class to 1,024.
type respExtra struct {
	connection   []string // the handler's Connection values
	trailerField []string // the handler's Trailer values
	trailers     []string // every declared trailer name
}

// extras returns w's respExtra, making it.
func (w *response) extras() *respExtra {
	if w.extra == nil {
		w.extra = new(respExtra)
	}
	return w.extra
}

// trailers returns the declared trailer names, the handler's Connection
// values and its Trailer values (nil when it set none).
func (w *response) trailers() (names, connection, trailerField []string) {
	if w.extra == nil {
		return nil, nil, nil
	}
	return w.extra.trailers, w.extra.connection, w.extra.trailerField
}

// init readies a zero response for req.
func (w *response) init(cfg *Config, req *http.Request, out Output, minor int, connCtx context.Context) {
	w.cfg, w.req, w.out, w.minor, w.isHead, w.connCtx = cfg, req, out, minor, req.Method == http.MethodHead, connCtx
	w.header, w.declared, w.closeAfter = make(http.Header), -1, req.Close
}

// Header implements http.ResponseWriter.
func (w *response) Header() http.Header { return w.header }

// WriteHeader implements http.ResponseWriter. 1xx codes other than 101 are
// sent at once as interim responses, as net/http does; the first other
// code is the final status and later calls are ignored.
func (w *response) WriteHeader(code int) {
	if w.hijacked {
		w.cfg.Log.Warn("WriteHeader on a hijacked connection", "status", code, "path", w.req.URL.Path)
		return
	}
	if w.done.Load() || w.wroteHeader {
		if !w.done.Load() {
			w.cfg.Log.Warn("superfluous WriteHeader call", "status", code, "path", w.req.URL.Path)
		}
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		switch {
		case w.minor == 0:
			return // RFC 9110 §15.2: no 1xx to an HTTP/1.0 client
		case code == http.StatusContinue && w.continued:
			return // the server sent it already (a proxy forwarding its backend's)
		case code == http.StatusContinue:
			w.continued = true
		}
		b := codec.AppendStatusLine(bufpool.GetSmall(), code, http.StatusText(code))
		b = appendHeader(b, w.header)
		b = append(b, "\r\n"...)
		w.send([][]byte{b}, false)
		return
	}
	w.wroteHeader = true
	w.status = code
	// One pass over the map finds what framing needs and the fields to
	// send: a lookup per special key and a second pass to write cost more
	// than the whole head for the usual handful of fields.
	var arr [32]string
	keys := arr[:0]
	var cl, trailerField []string
	var prefixed []string
	for k, v := range w.header {
		switch k {
		case "Content-Length":
			cl = v
		case "Content-Type": // set, even to nil: net/http's way of suppressing it
			w.hasContentType = true
		case "Date":
			w.hasDate = true
		case "Server":
			w.hasServer = true
		case "Connection":
			if len(v) > 0 {
				w.extras().connection = append([]string(nil), v...)
				w.closeAfter = w.closeAfter || hasToken(v, "close")
			}
			continue
		case "Trailer":
			trailerField = v
			continue
		case "Transfer-Encoding":
			continue
		}
		if strings.HasPrefix(k, http.TrailerPrefix) {
			prefixed = append(prefixed, strings.TrimPrefix(k, http.TrailerPrefix))
			continue
		}
		keys = append(keys, k)
	}
	skipLength := code < 200 || code == http.StatusNoContent
	if len(cl) > 0 && cl[0] != "" {
		n, err := strconv.ParseInt(strings.TrimSpace(cl[0]), 10, 64)
		if err == nil && n >= 0 {
			w.declared = n
		} else {
			w.cfg.Log.Warn("handler set an invalid Content-Length; ignored", "value", cl[0], "path", w.req.URL.Path)
			skipLength = true
		}
	}
	if skipLength && cl != nil {
		keys = slices.DeleteFunc(keys, func(k string) bool { return k == "Content-Length" })
	}
	if len(trailerField) > 0 {
		w.extras().trailerField = append([]string(nil), trailerField...)
	}
	if names := declaredTrailers(trailerField, prefixed); names != nil {
		w.extras().trailers = names
	}
	w.headBuf = appendFields(codec.AppendStatusLine(bufpool.GetSmall(), code, http.StatusText(code)), w.header, keys)
}

// Write implements http.ResponseWriter.
func (w *response) Write(p []byte) (int, error) { return write(w, p) }

// WriteString implements io.StringWriter, so io.WriteString and
// fmt.Fprint do not copy the string first.
func (w *response) WriteString(s string) (int, error) { return write(w, s) }

// startBody is what every way of writing body bytes begins with: refused
// once the handler returned or hijacked, and an implicit WriteHeader(200)
// if the handler set no status.
func (w *response) startBody() error {
	if w.done.Load() {
		return ErrWriteAfterReturn
	}
	if w.hijacked {
		return http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return nil
}

func write[S string | []byte](w *response, p S) (int, error) {
	if err := w.startBody(); err != nil {
		return 0, err
	}
	if !codec.BodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if w.failed {
		return 0, ErrClientGone
	}
	if err := w.checkDeadline(); err != nil {
		return 0, err
	}
	n := len(p)
	var err error
	if w.declared >= 0 && w.written+int64(n) > w.declared {
		n = int(w.declared - w.written)
		err = http.ErrContentLength
	}
	w.written += int64(n)
	for rest := p[:n]; len(rest) > 0; {
		// A full buffer is flushed only when more bytes come, so output of
		// exactly send_bytes still gets a Content-Length.
		if w.pending != nil && len(w.pending) == cap(w.pending) {
			if ferr := w.flush(false); ferr != nil {
				return n - len(rest), ferr
			}
		}
		if w.pending == nil {
			w.pending = w.newBuffer()
		}
		k := copy(w.pending[len(w.pending):cap(w.pending)], rest)
		w.pending = w.pending[:len(w.pending)+k]
		rest = rest[k:]
	}
	return n, err
}

// Flush implements http.Flusher.
func (w *response) Flush() { _ = w.FlushError() }

// FlushError sends the head and pending body now; http.ResponseController
// finds it.
func (w *response) FlushError() error {
	if err := w.startBody(); err != nil {
		return err
	}
	return w.flush(false)
}

// newBuffer returns an empty buffer of send_bytes capacity, pooled when
// that is the pool's size. (Starting with a small buffer and growing it
// measured slower for pipelined requests: docs/benchmarks-history.md.)
func (w *response) newBuffer() []byte {
	if n := w.cfg.SendBytes; n > 0 && n != bufpool.Size {
		return make([]byte, 0, n)
	}
	return bufpool.Get()
}

// flush hands the head (if not yet sent) and the pending body to Output.
// final is true when the handler has returned.
func (w *response) flush(final bool) error {
	if !w.failed && !final {
		_ = w.checkDeadline()
	}
	if w.status == http.StatusSwitchingProtocols && !w.hijacked && !w.failed {
		if !final {
			return nil // a 101 leaves only with a hijack (see Hijack)
		}
		w.cfg.Log.Error("handler answered 101 Switching Protocols without hijacking the connection; sent 500 instead",
			"path", w.req.URL.Path)
		bufpool.Put(w.headBuf)
		w.headBuf = nil
		if w.pending != nil {
			bufpool.Put(w.pending)
			w.pending = nil
		}
		w.failed, w.status = true, http.StatusInternalServerError
		_, err := w.out.Refuse(http.StatusInternalServerError,
			"The handler switched protocols without taking the connection", w.isHead)
		return err
	}
	if w.failed {
		if final { // the connection still has to learn the response is over
			_ = w.out.Send(nil, true, false)
		}
		return ErrClientGone
	}
	var bufs [][]byte
	if final {
		// The last flush of a response: two slices (head, body) without
		// an allocation for the array.
		bufs = w.lastBufs[:0]
	}
	if !w.headSent {
		bufs = append(bufs, w.appendHead(final))
		w.headSent = true
	}
	body := w.pending
	w.pending = nil
	if len(body) > 0 && (w.isHead || !codec.BodyAllowed(w.status)) {
		bufpool.Put(body)
		body = nil
	}
	if len(body) > 0 {
		switch {
		case w.chunked:
			bufs = append(bufs, codec.AppendChunkSize(bufpool.GetSmall(), len(body)), body, []byte("\r\n"))
		case len(bufs) == 1 && cap(bufs[0])-len(bufs[0]) >= len(body):
			// A short body joins its head: the response holds one 4 KiB
			// buffer until it is written, not 4 + 64 KiB (which matters for
			// pipelined responses held back in a batch), and the body
			// buffer goes straight back to this worker's pool.
			bufs[0] = append(bufs[0], body...)
			bufpool.Put(body)
		default:
			bufs = append(bufs, body)
		}
	} else if body != nil {
		bufpool.Put(body)
	}
	if final {
		if w.chunked {
			bufs = append(bufs, w.appendTrailer(bufpool.GetSmall()))
		}
		if w.declared >= 0 && w.written < w.declared && !w.isHead && codec.BodyAllowed(w.status) {
			w.cfg.Log.Warn("handler wrote fewer bytes than its Content-Length; closing the connection",
				"written", w.written, "content_length", w.declared, "path", w.req.URL.Path)
			w.closeAfter = true
		}
	}
	if len(bufs) == 0 && !final {
		return nil
	}
	return w.send(bufs, final)
}

func (w *response) send(bufs [][]byte, last bool) error {
	if err := w.out.Send(bufs, last, !w.closeAfter); err != nil {
		w.failed = true
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return ErrWriteDeadline
		}
		return err
	}
	return nil
}

// Scheme returns the URL scheme of x's requests before the proxy rules:
// url_scheme, or TLSScheme over TLS.
func (cfg *Config) Scheme(x *Exchange) string {
	if x.TLS != nil && cfg.TLSScheme != "" {
		return cfg.TLSScheme
	}
	return cfg.URLScheme
}
