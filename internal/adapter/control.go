package adapter

// What a handler reaches beyond Write and Flush: Hijack, CloseNotify and
// the deadlines of http.ResponseController.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/waitron/waitron/codec"
	"github.com/waitron/waitron/internal/bufpool"
)

// Hijack implements http.Hijacker: the handler gets the socket (a Go
// net.Conn on Go's own poller, with working deadlines) and a ReadWriter
// whose reader already holds every byte the client sent after the request.
// Output sent before (a flushed head and body) reaches the socket first; a
// head decided but not yet sent (WriteHeader(101), say) goes with the
// hijack (Output.Hijack), so a 101 does not leave while the hijack can
// still be refused. Afterwards the ResponseWriter refuses writes with
// http.ErrHijacked.
func (w *response) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	switch {
	case w.done.Load():
		return nil, nil, ErrWriteAfterReturn
	case w.hijacked:
		return nil, nil, http.ErrHijacked
	case w.failed:
		return nil, nil, ErrClientGone
	}
	if w.headSent {
		if err := w.flush(false); err != nil {
			return nil, nil, err
		}
	}
	var head [][]byte
	if w.wroteHeader && !w.headSent {
		w.headSent = true
		head = append(head, w.appendHead(false))
		if body := w.pending; len(body) > 0 && !w.isHead && codec.BodyAllowed(w.status) {
			head = append(head, body)
		} else if body != nil {
			bufpool.Put(body)
		}
		w.pending = nil
	}
	nc, pre, err := w.out.Hijack(head)
	if err != nil {
		if head != nil {
			w.failed = true // the head is gone with the hijack: the connection closes after the handler
		}
		return nil, nil, err
	}
	w.hijacked = true
	// The reader starts with what was read already, so that Buffered()
	// counts it (gorilla/websocket checks it) and nothing is lost.
	r := bufio.NewReaderSize(&PreReader{Pre: pre, R: nc}, max(4096, len(pre)))
	if len(pre) > 0 {
		_, _ = r.Peek(len(pre))
	}
	return nc, bufio.NewReadWriter(r, bufio.NewWriter(nc)), nil
}

// PreReader reads Pre, then from R.
type PreReader struct {
	Pre []byte
	R   io.Reader
}

func (p *PreReader) Read(b []byte) (int, error) {
	if len(p.Pre) > 0 {
		n := copy(b, p.Pre)
		p.Pre = p.Pre[n:]
		return n, nil
	}
	return p.R.Read(b)
}

// CloseNotify implements http.CloseNotifier (deprecated, but gin's Stream
// and older middleware assert it): the channel receives true once the
// client's connection closes, which also ends r.Context().
func (w *response) CloseNotify() <-chan bool {
	if w.closeCh == nil {
		ch := make(chan bool, 1)
		w.closeCh = ch
		w.stopNotify = context.AfterFunc(w.connCtx, func() { ch <- true })
	}
	return w.closeCh
}

// finish stops what the response watches once its handler has returned.
func (w *response) finish() {
	if w.stopNotify != nil {
		w.stopNotify()
	}
	if !w.wdeadline.IsZero() {
		w.out.SetWriteDeadline(time.Time{})
	}
}

// ErrWriteDeadline is returned by a write made, or blocked, past the
// deadline set with http.ResponseController's SetWriteDeadline; the
// connection then closes after what was sent.
var ErrWriteDeadline = fmt.Errorf("waitron: write deadline exceeded: %w", os.ErrDeadlineExceeded)

// SetWriteDeadline implements what http.ResponseController's
// SetWriteDeadline calls: a write or flush after t fails with
// ErrWriteDeadline (errors.Is os.ErrDeadlineExceeded), as does one blocked
// past t on a client that does not read; the connection then closes. A
// zero t clears it.
func (w *response) SetWriteDeadline(t time.Time) error {
	if w.done.Load() {
		return ErrWriteAfterReturn
	}
	w.wdeadline = t
	w.out.SetWriteDeadline(t)
	return nil
}

// SetReadDeadline implements what http.ResponseController's
// SetReadDeadline calls. The request body is complete before the handler
// runs (waitress's model), so no read of it can block and there is nothing
// for a read deadline to bound; it is accepted and has no effect.
func (w *response) SetReadDeadline(time.Time) error {
	if w.done.Load() {
		return ErrWriteAfterReturn
	}
	return nil
}

// EnableFullDuplex implements what http.ResponseController's
// EnableFullDuplex calls: the body is complete before the handler runs, so
// reading it while writing the response always works already.
func (w *response) EnableFullDuplex() error { return nil }

// checkDeadline fails the response once its write deadline has passed.
func (w *response) checkDeadline() error {
	if !w.wdeadline.IsZero() && !time.Now().Before(w.wdeadline) {
		w.failed = true
		return ErrWriteDeadline
	}
	return nil
}
