package engine

import (
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/waitron/waitron/internal/bufpool"
)

// fileCache keeps the temporary files of spooled request bodies for reuse.
// Creating, filling and removing a file for every body over
// inbuf_overflow costs the kernel a file's worth of page and block
// allocation, freeing and metadata each time (docs/architecture.md gives
// the profile that showed it); a reused file is overwritten in place, or
// emptied first when its bytes went out with sendfile (tempBody.Sent).
// Each file is unlinked as soon as it is created, so none is left
// in the directory however the process ends, and a body is read through a
// reader bounded to its own length, since a reused file may be longer.
type fileCache struct {
	dir    string
	budget int64  // the most bytes the files kept may hold together
	clock  *clock // the server's: when a file is given back

	mu     sync.Mutex
	free   []*spoolFile // the most recently given back last
	kept   int64        // bytes the files in free hold
	closed bool         // the server has stopped: files are closed, not kept
}

// spoolFile is one temporary file, the most bytes it has held, and when
// it was last given back.
type spoolFile struct {
	f     *os.File
	size  int64
	since stamp
}

// keepBytes bounds the disk the files kept for reuse hold together: enough
// for several concurrent uploads of tens of megabytes, whose files would
// otherwise be allocated and freed block by block for each body. A file
// not reused for keepIdle is closed (its blocks freed) by trim, so an idle
// server holds none.
const (
	keepBytes = 256 << 20
	keepIdle  = 10 * time.Second
)

func newFileCache(dir string, k *clock) *fileCache {
	return &fileCache{dir: dir, budget: keepBytes, clock: k}
}

// get returns an empty-for-our-purposes file positioned at its start: the
// most recently given back (its pages the likeliest to be cached). Any
// goroutine.
func (fc *fileCache) get() (*spoolFile, error) {
	fc.mu.Lock()
	var sf *spoolFile
	if n := len(fc.free); n > 0 {
		sf = fc.free[n-1]
		fc.free[n-1] = nil
		fc.free = fc.free[:n-1]
		fc.kept -= sf.size
	}
	fc.mu.Unlock()
	if sf != nil {
		if _, err := sf.f.Seek(0, io.SeekStart); err == nil {
			return sf, nil
		}
		sf.f.Close()
	}
	f, err := os.CreateTemp(fc.dir, "waitron-body-*")
	if err != nil {
		return nil, err
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, err
	}
	return &spoolFile{f: f}, nil
}

// put takes back sf, which now holds n bytes: kept while the budget
// allows, else closed. Any goroutine.
func (fc *fileCache) put(sf *spoolFile, n int64) {
	sf.size, sf.since = max(sf.size, n), fc.clock.stamp()
	fc.mu.Lock()
	if !fc.closed && fc.kept+sf.size <= fc.budget {
		fc.free = append(fc.free, sf)
		fc.kept += sf.size
		fc.mu.Unlock()
		return
	}
	fc.mu.Unlock()
	sf.f.Close()
}

// idle reports whether a file kept has not been reused for keepIdle at
// now. Any goroutine; cheap enough for every tick.
func (fc *fileCache) idle(now stamp) bool {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return len(fc.free) > 0 && time.Duration(now-fc.free[0].since) >= keepIdle
}

// trim closes the files kept that were not reused for keepIdle at now
// (the oldest are first in free). Not on a loop: closing a file frees its
// blocks.
func (fc *fileCache) trim(now stamp) {
	fc.mu.Lock()
	k := 0
	for k < len(fc.free) && time.Duration(now-fc.free[k].since) >= keepIdle {
		k++
	}
	old := append([]*spoolFile(nil), fc.free[:k]...)
	n := copy(fc.free, fc.free[k:])
	clear(fc.free[n:])
	fc.free = fc.free[:n]
	for _, sf := range old {
		fc.kept -= sf.size
	}
	fc.mu.Unlock()
	for _, sf := range old {
		sf.f.Close()
	}
}

// close closes the files kept, and any given back later. When the server
// has stopped.
func (fc *fileCache) close() {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	fc.closed = true
	for i, sf := range fc.free {
		sf.f.Close()
		fc.free[i] = nil
	}
	fc.free, fc.kept = nil, 0
}

// tempBody is a spooled request body: its file, read only up to the
// body's length. Close gives the file back to the cache; a read after
// that (from a goroutine the handler left behind) fails rather than see
// the file's next body.
type tempBody struct {
	mu     sync.Mutex
	r      *io.SectionReader
	sf     *spoolFile
	cache  *fileCache
	closed bool
	sent   bool // bytes went out with sendfile: emptied before reuse
}

func (t *tempBody) Read(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	return t.r.Read(p)
}

// WriteTo copies the rest of the body to w, so that io.Copy from a
// spooled body reads the file in large pieces. A writer that reads from
// its source itself (a response writer, which sends a spooled body with
// sendfile) is handed the body; io.Discard is not: it would read in small
// pieces.
func (t *tempBody) WriteTo(w io.Writer) (int64, error) {
	if rf, ok := w.(io.ReaderFrom); ok && w != io.Discard {
		return rf.ReadFrom(readerOnly{t})
	}
	buf := bufpool.Get()
	defer bufpool.Put(buf)
	buf = buf[:cap(buf)]
	var n int64
	for {
		k, err := t.Read(buf)
		if k > 0 {
			wk, werr := w.Write(buf[:k])
			n += int64(wk)
			if werr != nil {
				return n, werr
			}
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// readerOnly is the body without WriteTo, which a ReaderFrom's fallback
// copy would call back; it keeps UnreadSection and Sent for sendfile.
type readerOnly struct{ t *tempBody }

func (r readerOnly) Read(p []byte) (int, error)              { return r.t.Read(p) }
func (r readerOnly) UnreadSection() (*os.File, int64, int64) { return r.t.UnreadSection() }
func (r readerOnly) Sent(k int64)                            { r.t.Sent(k) }

// UnreadSection implements adapter.FileBody: the spool file and the part
// of the body not yet read (nil once closed).
func (t *tempBody) UnreadSection() (*os.File, int64, int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, 0, 0
	}
	pos, _ := t.r.Seek(0, io.SeekCurrent)
	_, base, _ := t.r.Outer()
	return t.sf.f, base + pos, t.r.Size() - pos
}

// Sent implements adapter.FileBody: k more bytes went from the file to a
// socket with sendfile, which queues references to the file's pages, so
// at Close the file is emptied before it is reused: truncating takes the
// pages out of the file (those the socket still holds stay its own, with
// their bytes) and the next body is written to new ones, where writing
// over them in place would change bytes not yet sent.
func (t *tempBody) Sent(k int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.closed && k > 0 {
		_, _ = t.r.Seek(k, io.SeekCurrent)
		t.sent = true
	}
}

func (t *tempBody) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.closed {
		t.closed = true
		switch {
		case !t.sent:
			t.cache.put(t.sf, t.r.Size())
		case t.sf.f.Truncate(0) == nil:
			t.cache.put(t.sf, t.r.Size()) // counted at what it will hold again
		default:
			t.sf.f.Close() // unlinked: its pages go when the socket lets go of them
		}
	}
	return nil
}
