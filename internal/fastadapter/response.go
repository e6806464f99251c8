package fastadapter

import (
	"errors"
	"fmt"
	"github.com/waitron/waitron/internal/adapter"
	"io"
	"net"
	"net/http"
	"runtime/debug"

	"github.com/valyala/fasthttp"

	"github.com/waitron/waitron/codec"
	"github.com/waitron/waitron/internal/bufpool"
)

// The response of a fasthttp handler: framed as fasthttp's own server
// writes it, and handed to adapter.Output through fastWriter.

// respond writes fe.ctx.Response to x.Out, or hands the connection to the
// handler's hijack handler.
func (fe *fastExchange) respond(cfg *adapter.Config, x *adapter.Exchange) {
	st, ctx := &x.State, &fe.ctx
	resp := &ctx.Response
	hijack := *fastHijack(ctx)
	noResponse := hijack != nil && *fastHijackNoResponse(ctx)
	if ctx.IsHead() {
		resp.SkipBody = true
	}
	closes := x.Framing.Close || cfg.Draining != nil && cfg.Draining() || resp.ConnectionClose()
	forShutdown := !x.Framing.Close && !resp.ConnectionClose() && closes
	closes = closes || cfg.NoKeepAlive != nil && cfg.NoKeepAlive()
	if resp.IsBodyStream() && resp.Header.ContentLength() < 0 && !resp.SkipBody {
		// fasthttp chunks a stream of unknown length: its chunks are read
		// as they pass, to count the body for the access log, and for an
		// HTTP/1.0 client, which cannot read chunks, the framing is taken
		// off and the end of the body is the close.
		fe.out.chunks = &codec.ChunkedDecoder{Max: 1<<63 - 1, MaxTrailer: 1 << 20}
		if x.Head.Minor == 0 {
			fe.out.strip, closes = true, true
		}
	}
	if hijack != nil {
		closes = false // the connection is the hijack handler's next
	}
	switch {
	case closes:
		resp.SetConnectionClose()
	case x.Head.Minor == 0:
		resp.Header.Set("Connection", "keep-alive")
	}
	resp.Header.SetNoDefaultContentType(false)
	fe.keepServer(cfg.Ident)
	// (Date is fasthttp's own: its header writer puts in the date its
	// process-wide goroutine refreshes every second, and drops a handler's.)
	//
	// A stream of unknown length (a stream writer's events) leaves at each
	// of its flushes; one of known length is bulk, sent a buffer at a time.
	fe.out.out, fe.out.stream = x.Out, resp.IsBodyStream() && resp.Header.ContentLength() < 0
	fe.out.piece = cfg.SendBytes
	if fe.out.piece <= 0 {
		fe.out.piece = bufpool.Size
	}
	status := resp.StatusCode()
	st.Status = status
	o := adapter.Outcome{Status: status, Handled: true, Closes: closes, ForShutdown: forShutdown}
	if cfg.LogRequests {
		o.Remote, o.Referer, o.UserAgent = ctx.RemoteAddr().String(), string(ctx.Referer()), string(ctx.UserAgent())
	}
	if !noResponse {
		done, err := fe.sendFileBody(resp, x.Out)
		if !done {
			done, err = fe.writeInMemory(resp, status)
		}
		if !done {
			if err = resp.Write(fe.bw); err == nil {
				err = fe.bw.Flush()
			}
		}
		if err == nil && fe.out.strip && !fe.out.chunks.Done() {
			err = errors.New("waitron: the chunked body stream ended early")
		}
		switch {
		case resp.SkipBody || !codec.BodyAllowed(status):
		case fe.out.chunks != nil:
			o.Bytes = fe.out.body
		default:
			o.Bytes = int64(max(resp.Header.ContentLength(), 0))
		}
		if err != nil {
			fe.out.drop()
			o.Closes, o.ClientGone = true, errors.Is(err, adapter.ErrClientGone)
			if !o.ClientGone {
				cfg.Log.Error("writing the response failed", "path", string(ctx.Path()), "err", err)
			}
			_ = x.Out.Send(nil, true, false)
			st.Outcome = o
			return
		}
	}
	st.Outcome = o
	if hijack == nil {
		if err := fe.out.finish(!closes); err != nil {
			st.Outcome.Closes, st.Outcome.ClientGone = true, true
		}
		return
	}
	if err := fe.out.flush(); err != nil {
		st.Outcome.ClientGone = true
		return
	}
	nc, pre, err := x.Out.Hijack(nil)
	if err != nil {
		st.Outcome.ClientGone = true
		return
	}
	st.Status = http.StatusSwitchingProtocols
	if len(pre) > 0 {
		nc = &preReadConn{Conn: nc, r: adapter.PreReader{Pre: pre, R: nc}}
	}
	func() {
		defer func() {
			if p := recover(); p != nil {
				cfg.Log.Error("panic in a hijack handler", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			}
		}()
		hijack(nc)
	}()
	nc.Close() // as fasthttp does when its hijack handler returns
}

// sendFileBody sends a response whose body stream is a spooled request
// body (an echo: ctx.SetBodyStream(ctx.RequestBodyStream(), n)) as the
// net/http adapter does: the head, then the file to the socket with
// adapter.Output's SendFile as far as the socket takes it, then the rest through
// the usual buffers. done is false when the response is not of that kind
// (Response.Write then sends it).
func (fe *fastExchange) sendFileBody(resp *fasthttp.Response, out adapter.Output) (done bool, err error) {
	if !resp.IsBodyStream() { // most responses: no interface assertions to make
		return false, nil
	}
	fb, ok := resp.BodyStream().(adapter.FileBody)
	fs, ok2 := out.(adapter.FileSender)
	n := resp.Header.ContentLength()
	if !ok || !ok2 || n < adapter.SendFileMin || resp.SkipBody || fe.out.chunks != nil || len(resp.Header.PeekTrailerKeys()) > 0 {
		return false, nil
	}
	f, off, avail := fb.UnreadSection()
	if f == nil || avail < int64(n) {
		return false, nil
	}
	fe.out.bufs = append(fe.out.bufs, resp.Header.AppendBytes(bufpool.GetSmall()))
	if err := fe.out.flush(); err != nil {
		return true, err
	}
	k := fs.SendFile(f, off, int64(n))
	fb.Sent(k)
	if rest := int64(n) - k; rest > 0 {
		if _, err := io.CopyN(&fe.out, resp.BodyStream(), rest); err != nil {
			return true, err
		}
	}
	return true, resp.CloseBodyStream()
}

// writeInMemory serialises a response whose body is in memory as
// Response.Write does (its Content-Length set from the body, the head,
// the body unless skipped), straight into the output's buffers: the head
// built in a pooled buffer, the body copied behind it. Response.Write
// would copy both into its bufio.Writer first and out of it again. done
// is false for a response it leaves to Response.Write: a body stream, or
// trailers (sent chunked).
func (fe *fastExchange) writeInMemory(resp *fasthttp.Response, status int) (done bool, err error) {
	if resp.IsBodyStream() || len(resp.Header.PeekTrailerKeys()) > 0 {
		return false, nil
	}
	body := resp.Body()
	// fasthttp's rule for a status with no body (mustSkipBody): 1xx, 204,
	// 304, and nothing under 100.
	send := !resp.SkipBody && !(status >= 100 && status < 200 || status == http.StatusNoContent || status == http.StatusNotModified)
	if send || len(body) > 0 {
		resp.Header.SetContentLength(len(body))
	}
	fe.out.bufs = append(fe.out.bufs, resp.Header.AppendBytes(bufpool.GetSmall()))
	if send && len(body) > 0 {
		_, err = fe.out.Write(body)
	}
	return true, err
}

// preReadConn is a hijacked connection whose first bytes were read before
// the hijack (sent right behind the request).
type preReadConn struct {
	net.Conn
	r adapter.PreReader
}

func (c *preReadConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// fastWriter is the io.Writer under fasthttp's Response.Write: it collects
// the response into pooled buffers and hands them to adapter.Output once they hold
// send_bytes, and at every write of a body stream of unknown length (a
// stream writer's Flush reaches the client then). (The framing is
// fasthttp's: a body in memory always gets its Content-Length.)
type fastWriter struct {
	out    adapter.Output
	bufs   [][]byte // collected for the next Send, in arr while it fits
	arr    [4][]byte
	stream bool
	body   int64                 // payload of a chunked stream, for the access log
	head   bool                  // the head has been seen (a chunked stream's)
	chunks *codec.ChunkedDecoder // a stream of unknown length: fasthttp chunks it
	strip  bool                  // … and the chunk framing is taken off (HTTP/1.0)
	raw    []byte                // chunk framing not yet decoded
	lost   bool                  // the framing could not be read: counting stopped
	piece  int                   // send_bytes: what is collected leaves once it reaches this
	err    error
}

func (w *fastWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	n := len(p)
	if w.chunks != nil {
		w.chunkedWrite(p)
	} else {
		w.add(p)
	}
	if w.stream || w.pending() >= w.piece {
		w.err = w.flush()
	}
	return n, w.err
}

// ReadFrom is where fasthttp's writer of a body of known length hands a
// file over (a large file of fasthttp.FS or ctx.SendFile, an *os.File
// body stream, under an io.LimitedReader), as its own server hands it to
// the TCP connection for sendfile: the head collected so far goes first,
// then what the socket takes of the file goes by adapter.Output's SendFile, and
// the rest, like any other reader's bytes, through Write.
func (w *fastWriter) ReadFrom(r io.Reader) (int64, error) {
	var sent int64
	if fs, ok := w.out.(adapter.FileSender); ok && w.err == nil && w.chunks == nil && !w.stream {
		// Only a file under a limit: fasthttp's writer bounds it by the
		// body's declared length, which this writer does not know.
		if sec, ok := adapter.FileSectionOf(r); ok && sec.Limited() && sec.N >= adapter.SendFileMin {
			if w.err = w.flush(); w.err != nil {
				return 0, w.err
			}
			sent = fs.SendFile(sec.F, sec.Off, sec.N)
			sec.Sent(sent)
		}
	}
	buf := bufpool.Get()
	defer bufpool.Put(buf)
	n, err := io.CopyBuffer(adapter.WriteOnly{Writer: w}, r, buf[:cap(buf)])
	return sent + n, err
}

// chunkedWrite passes on a chunked stream, reading its chunks as they go
// to count the payload; with strip (an HTTP/1.0 client) it passes on the
// head without its Transfer-Encoding and the payload without its chunk
// lines instead.
func (w *fastWriter) chunkedWrite(p []byte) {
	if !w.strip {
		w.add(p)
		if w.lost {
			return
		}
	}
	w.raw = append(w.raw, p...)
	if !w.head {
		end := indexHeadEnd(w.raw)
		if end < 0 {
			return
		}
		w.head = true
		if w.strip {
			w.add(dropField(w.raw[:end], "Transfer-Encoding"))
		}
		w.raw = w.raw[:copy(w.raw, w.raw[end:])]
	}
	rest := w.raw
	for len(rest) > 0 && !w.chunks.Done() {
		k, data, err := w.chunks.Decode(rest)
		if w.strip {
			w.add(data)
		}
		w.body += int64(len(data))
		if err != nil {
			w.err, w.lost = err, true
			if !w.strip {
				w.err = nil // only counting: the bytes still pass
			}
			break
		}
		if k == 0 {
			break
		}
		rest = rest[k:]
	}
	if w.chunks.Done() || w.lost {
		rest = nil
	}
	w.raw = w.raw[:copy(w.raw, rest)] // keep only the undecoded tail
}

// indexHeadEnd returns the length of the response head at the start of b
// (through its blank line), or -1.
func indexHeadEnd(b []byte) int {
	for i := 0; i+3 < len(b); i++ {
		if b[i] == '\r' && b[i+1] == '\n' && b[i+2] == '\r' && b[i+3] == '\n' {
			return i + 4
		}
	}
	return -1
}

// dropField returns head without its field lines named name.
func dropField(head []byte, name string) []byte {
	out := make([]byte, 0, len(head))
	for len(head) > 0 {
		i := 0
		for i+1 < len(head) && !(head[i] == '\r' && head[i+1] == '\n') {
			i++
		}
		line := head[:min(i+2, len(head))]
		head = head[len(line):]
		if len(line) > len(name) && line[len(name)] == ':' && codec.EqualFold(line[:len(name)], name) {
			continue
		}
		out = append(out, line...)
	}
	return out
}

// add appends p to the pooled buffers.
func (w *fastWriter) add(p []byte) {
	for len(p) > 0 {
		if len(w.bufs) == 0 || len(w.bufs[len(w.bufs)-1]) == cap(w.bufs[len(w.bufs)-1]) {
			b := bufpool.GetSmall()
			if len(w.bufs) > 0 || len(p) > bufpool.SmallSize {
				b = bufpool.Get()
			}
			w.bufs = append(w.bufs, b)
		}
		last := &w.bufs[len(w.bufs)-1]
		k := copy((*last)[len(*last):cap(*last)], p)
		*last = (*last)[:len(*last)+k]
		p = p[k:]
	}
}

func (w *fastWriter) pending() int {
	n := 0
	for _, b := range w.bufs {
		n += len(b)
	}
	return n
}

// flush hands what is collected to adapter.Output, not as the end of the
// response.
func (w *fastWriter) flush() error {
	if len(w.bufs) == 0 {
		return nil
	}
	return w.send(false, true)
}

// finish hands the rest to adapter.Output as the end of the response.
func (w *fastWriter) finish(keepAlive bool) error { return w.send(true, keepAlive) }

// send hands the buffers collected to Send, which keeps them (not the
// array holding them). They stop being w's before the call: were Send to
// panic after recycling them, release's drop must not recycle them again
// (two owners of one pooled buffer would mix two responses' bytes).
func (w *fastWriter) send(last, keepAlive bool) error {
	bufs := w.bufs
	w.bufs = w.arr[:0]
	err := w.out.Send(bufs, last, keepAlive)
	clear(bufs)
	return err
}

// emptied forgets the slices collected, to collect the next ones in arr.
func (w *fastWriter) emptied() {
	clear(w.bufs)
	w.bufs = w.arr[:0]
}

// drop recycles what was collected but not sent.
func (w *fastWriter) drop() {
	for _, b := range w.bufs {
		bufpool.Put(b)
	}
	w.emptied()
}

func (w *fastWriter) reset() {
	w.drop()
	*w = fastWriter{}
	w.bufs = w.arr[:0]
}
