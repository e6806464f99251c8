package adapter

import (
	"io"
	"net/http"
	"os"

	"github.com/waitron/waitron/codec"
	"github.com/waitron/waitron/internal/bufpool"
)

// Files in a response: a handler that copies a regular file (or a spooled
// request body) into a response of known length has it sent with
// sendfile(2), as net/http's ReadFrom does.

// ReadFrom implements io.ReaderFrom, as net/http's ResponseWriter does, so
// io.Copy into a response reads straight into its pending buffer: one copy
// fewer, and reads of up to send_bytes. With a declared Content-Length it
// reads at most the declared rest, and a source with more than that gets
// http.ErrContentLength, as Write does.
func (w *response) ReadFrom(src io.Reader) (int64, error) {
	if err := w.startBody(); err != nil {
		return 0, err
	}
	if !codec.BodyAllowed(w.status) || w.failed {
		return io.Copy(WriteOnly{w}, src)
	}
	if w.declared >= 0 {
		sent, err := w.sendFile(src)
		if err != nil {
			return sent, err
		}
		lr := io.LimitedReader{R: src, N: w.declared - w.written}
		n, err := w.readFrom(&lr)
		n += sent
		if err == nil && lr.N == 0 {
			var one [1]byte
			if k, _ := io.ReadFull(src, one[:]); k > 0 {
				err = http.ErrContentLength // more than declared: as Write answers it
			}
		}
		return n, err
	}
	return w.readFrom(src)
}

// FileSender is an Output that can move part of a file to the socket
// itself (sendfile(2)): SendFile sends at most n bytes of f from off, only
// while nothing else of the connection is pending and only what the socket
// takes at once, and returns how many it sent.
type FileSender interface {
	SendFile(f *os.File, off, n int64) int64
}

// FileBody is a request body held in a file (spooled): UnreadSection is
// the part not yet read; Sent marks k more bytes of it read, sent from the
// file itself (so the file is not to be overwritten while the socket may
// still hold references to its pages).
type FileBody interface {
	UnreadSection() (f *os.File, off, n int64)
	Sent(k int64)
}

// sendFile sends what it can of a file being copied into a response of
// declared length with Output's SendFile: the page cache goes to the
// socket without passing through a buffer. The file is a spooled request
// body (an echo, a proxy), or, as net/http's ReadFrom takes them, a
// regular *os.File from its current offset, alone or under an
// io.LimitedReader (http.ServeContent copies a file, or a range of it,
// so). The head (and anything pending) is sent first. What it did not
// send, the caller copies as usual, from where it stopped: the file's
// offset (and the limit) moved past what went.
func (w *response) sendFile(src io.Reader) (int64, error) {
	fs, ok := w.out.(FileSender)
	if !ok || w.isHead || w.chunked {
		return 0, nil
	}
	sec, ok := FileSectionOf(src)
	if !ok {
		return 0, nil
	}
	n := min(sec.N, w.declared-w.written)
	if n < SendFileMin {
		return 0, nil
	}
	if err := w.flush(false); err != nil {
		return 0, err
	}
	k := fs.SendFile(sec.F, sec.Off, n)
	sec.Sent(k)
	w.written += k
	return k, nil
}

// FileSection is the part of a file that a copy from src would read: N
// bytes of F from Off; Sent marks k of them read.
type FileSection struct {
	F      *os.File
	Off, N int64
	body   FileBody          // a spooled body's, else
	lr     *io.LimitedReader // the limit over F, if any
}

// Limited reports whether the section is a file under an
// io.LimitedReader.
func (sec FileSection) Limited() bool { return sec.lr != nil }

// FileSectionOf returns src's FileSection when src is a spooled body or
// a regular file (possibly under a LimitedReader) whose offset is known.
func FileSectionOf(src io.Reader) (FileSection, bool) {
	if fb, ok := src.(FileBody); ok {
		f, off, n := fb.UnreadSection()
		return FileSection{F: f, Off: off, N: n, body: fb}, f != nil
	}
	lr, _ := src.(*io.LimitedReader)
	if lr != nil {
		src = lr.R
	}
	f, ok := src.(*os.File)
	if !ok {
		return FileSection{}, false
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		return FileSection{}, false
	}
	off, err := f.Seek(0, io.SeekCurrent)
	if err != nil || off > st.Size() {
		return FileSection{}, false
	}
	sec := FileSection{F: f, Off: off, N: st.Size() - off, lr: lr}
	if lr != nil {
		sec.N = min(sec.N, lr.N)
	}
	return sec, true
}

// Sent marks k bytes of the section read.
func (sec FileSection) Sent(k int64) {
	switch {
	case sec.body != nil:
		sec.body.Sent(k)
	case k > 0:
		// Where the copy goes on, as after reading k bytes (sendfile with
		// an offset of its own leaves the file's alone).
		_, _ = sec.F.Seek(sec.Off+k, io.SeekStart)
		if sec.lr != nil {
			sec.lr.N -= k
		}
	}
}

// SendFileMin is the least a file must hold for sendFile: below a buffer's
// worth, the copy costs less than the head's write of its own.
const SendFileMin = 64 << 10

// readFrom reads src to its end into the pending buffer, sending full
// buffers.
func (w *response) readFrom(src io.Reader) (int64, error) {
	var total int64
	for {
		if w.pending == nil {
			w.pending = w.newBuffer()
		}
		buf, fresh := w.pending, false
		if len(buf) == cap(buf) {
			// Full: read on into a fresh buffer, and send the full one
			// only if more came, so output of exactly send_bytes still gets
			// a Content-Length.
			buf, fresh = w.newBuffer(), true
		}
		k, err := src.Read(buf[len(buf):cap(buf)])
		switch {
		case k > 0 && fresh:
			if ferr := w.flush(false); ferr != nil {
				bufpool.Put(buf)
				return total, ferr
			}
			fallthrough
		case k > 0:
			total += int64(k)
			w.written += int64(k)
			w.pending = buf[:len(buf)+k]
		case fresh:
			bufpool.Put(buf)
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// WriteOnly hides a writer's ReadFrom, so io.Copy uses Write.
type WriteOnly struct{ io.Writer }
