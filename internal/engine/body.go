package engine

import (
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/waitron/waitron/internal/bufpool"
)

// spoolHigh is how many body bytes may wait for the spooler before the
// loop stops taking body bytes from the connection.
const spoolHigh = 1 << 20

// bodyBuffer collects a request body on the event loop: in memory up to
// inbuf_overflow bytes, then in a temporary file. File I/O never happens on
// the loop: past the limit a spooler goroutine writes the file from a queue
// the loop fills without blocking; the worker waits for it before running
// the handler.
type bodyBuffer struct {
	mem   []byte
	limit int
	n     int64
	files *fileCache
	sp    *spooler
}

type spooler struct {
	mu      sync.Mutex
	cond    sync.Cond
	queue   [][]byte
	queued  int  // bytes in queue
	closed  bool // no more bytes will come
	blocked bool // the loop found the queue full and waits for wake
	wake    func()

	aborted atomic.Bool
	done    chan struct{}
	file    *spoolFile
	err     error
}

// newBody starts a body of expected bytes (-1: unknown, as with chunked).
// A body known to fit in memory gets its buffer at once rather than by
// doubling; one known not to goes to the file from its first byte.
func newBody(limit int, files *fileCache, expected int64) *bodyBuffer {
	b := &bodyBuffer{limit: limit, files: files}
	switch {
	case expected > int64(limit):
		b.limit = 0 // bound for the file anyway: no memory copy first
	case expected > 0:
		b.mem = make([]byte, 0, expected)
	}
	return b
}

// ready reports whether write may be called now. When it returns false the
// spooler calls wake once it has caught up. Loop only.
func (b *bodyBuffer) ready() bool {
	if b.sp == nil {
		return true
	}
	b.sp.mu.Lock()
	defer b.sp.mu.Unlock()
	if b.sp.queued < spoolHigh {
		return true
	}
	b.sp.blocked = true
	return false
}

// write takes all of p without blocking. Loop only; p may be reused once
// write returns.
func (b *bodyBuffer) write(p []byte, wake func()) {
	b.n += int64(len(p))
	if b.sp == nil && len(b.mem)+len(p) <= b.limit {
		b.mem = append(b.mem, p...)
		return
	}
	if b.sp == nil {
		b.sp = &spooler{done: make(chan struct{}), wake: wake}
		b.sp.cond.L = &b.sp.mu
		first := b.mem
		b.mem = nil
		go b.sp.run(b.files, first)
	}
	var chunks [][]byte
	for len(p) > 0 {
		c := bufpool.Get()
		k := copy(c[:cap(c)], p)
		chunks = append(chunks, c[:k])
		p = p[k:]
	}
	sp := b.sp
	sp.mu.Lock()
	for _, c := range chunks {
		sp.queue = append(sp.queue, c)
		sp.queued += len(c)
	}
	sp.cond.Signal()
	sp.mu.Unlock()
}

// finish marks the end of the body. Loop only.
func (b *bodyBuffer) finish() {
	if b.sp != nil {
		b.sp.close()
	}
}

// abort drops the body and removes any temporary file. Any goroutine.
func (b *bodyBuffer) abort() {
	if b.sp != nil {
		b.sp.aborted.Store(true)
		b.sp.close()
	}
}

// reader waits for the body to be complete and returns it, positioned at
// the start. Closing a file-backed reader gives the file back to the
// cache. Worker only.
func (b *bodyBuffer) reader() (io.ReadCloser, error) {
	if b.sp == nil {
		return &memBody{b: b.mem}, nil
	}
	<-b.sp.done
	if b.sp.err != nil {
		return nil, b.sp.err
	}
	return &tempBody{r: io.NewSectionReader(b.sp.file.f, 0, b.n), sf: b.sp.file, cache: b.files}, nil
}

func (sp *spooler) close() {
	sp.mu.Lock()
	sp.closed = true
	sp.cond.Signal()
	sp.mu.Unlock()
}

func (sp *spooler) run(files *fileCache, first []byte) {
	defer close(sp.done)
	sp.file, sp.err = files.get()
	var f *os.File
	if sp.err == nil {
		f = sp.file.f
		if len(first) > 0 { // os.File.Write makes the system call even for nothing
			_, sp.err = f.Write(first)
		}
	}
	sp.mu.Lock()
	for {
		for len(sp.queue) == 0 && !sp.closed {
			sp.cond.Wait()
		}
		if len(sp.queue) == 0 {
			break
		}
		batch := sp.queue
		sp.queue = nil
		sp.mu.Unlock()
		n := 0
		if sp.err == nil && !sp.aborted.Load() {
			sp.err = writeAll(f, batch)
		}
		for _, c := range batch {
			n += len(c)
			bufpool.Put(c)
		}
		sp.mu.Lock()
		sp.queued -= n
		if sp.blocked && sp.queued < spoolHigh {
			sp.blocked = false
			sp.mu.Unlock()
			sp.wake()
			sp.mu.Lock()
		}
	}
	sp.mu.Unlock()
	if sp.file != nil && (sp.err != nil || sp.aborted.Load()) {
		sp.file.f.Close() // rare: closed rather than kept
	}
}

// writeAll writes bufs to f in order with as few writev(2) calls as the
// kernel takes them (one, for a regular file), not a write per buffer.
// bufs and its slices are left as they were.
func writeAll(f *os.File, bufs [][]byte) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var werr error
	if err := rc.Write(func(fd uintptr) bool {
		for len(bufs) > 0 {
			k, err := unix.Writev(int(fd), bufs[:min(len(bufs), 1024)]) // IOV_MAX
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				werr = err
				return true
			}
			for len(bufs) > 0 && k >= len(bufs[0]) { // drop what went (and empty ones)
				k -= len(bufs[0])
				bufs = bufs[1:]
			}
			if k > 0 { // a short write: go on from there, the caller's slices as they are
				bufs = append([][]byte{bufs[0][k:]}, bufs[1:]...)
			}
		}
		return true
	}); err != nil {
		return err
	}
	return werr
}

// memBody is a request body held in memory. As net/http's, it cannot be
// read once closed (the adapter closes it when the handler returns), so a
// goroutine the handler left behind gets http.ErrBodyReadAfterClose rather
// than the bytes.
type memBody struct {
	mu     sync.Mutex
	b      []byte
	closed bool
}

func (m *memBody) Read(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.closed:
		return 0, http.ErrBodyReadAfterClose
	case len(m.b) == 0:
		return 0, io.EOF
	}
	n := copy(p, m.b)
	m.b = m.b[n:]
	return n, nil
}

// WriteTo lets io.Copy hand the body to w in one Write.
func (m *memBody) WriteTo(w io.Writer) (int64, error) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return 0, http.ErrBodyReadAfterClose
	}
	b := m.b
	m.b = nil
	m.mu.Unlock()
	if len(b) == 0 {
		return 0, nil
	}
	n, err := w.Write(b)
	if n < len(b) {
		m.mu.Lock()
		if !m.closed {
			m.b = b[n:] // what w did not take stays to be read
		}
		m.mu.Unlock()
	}
	return int64(n), err
}

func (m *memBody) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed, m.b = true, nil
	return nil
}
