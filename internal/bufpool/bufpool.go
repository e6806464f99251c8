// Package bufpool recycles the byte slices that carry response bytes from a
// handler's goroutine to the event loop. A slice handed to the loop is put
// back only after the loop has copied or written it.
package bufpool

import "sync"

// Size is the capacity of pooled buffers; larger ones are not kept.
const Size = 64 << 10

var (
	pool = sync.Pool{New: func() any { b := make([]byte, 0, Size); return &b }}
	// holders recycles the *[]byte boxes, so neither Get nor Put allocates
	// (putting a bare slice into a sync.Pool would allocate its header).
	holders = sync.Pool{New: func() any { return new([]byte) }}
)

// Get returns an empty buffer with capacity Size.
func Get() []byte {
	p := pool.Get().(*[]byte)
	b := (*p)[:0]
	*p = nil
	holders.Put(p)
	return b
}

// Put recycles b. b must not be used afterwards.
func Put(b []byte) {
	if cap(b) != Size {
		return
	}
	p := holders.Get().(*[]byte)
	*p = b[:0]
	pool.Put(p)
}
