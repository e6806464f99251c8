// Package bufpool recycles the byte slices that carry response bytes from a
// handler's goroutine to the event loop. A slice handed to the loop is put
// back only after the loop has copied or written it.
package bufpool

import "sync"

// Size is the capacity of pooled buffers; SmallSize that of the small ones
// (a response head, a short body). Buffers of other capacities are not kept.
const (
	Size      = 64 << 10
	SmallSize = 4 << 10
)

var (
	pool  = sync.Pool{New: func() any { b := make([]byte, 0, Size); return &b }}
	small = sync.Pool{New: func() any { b := make([]byte, 0, SmallSize); return &b }}
	// holders recycles the *[]byte boxes, so neither Get nor Put allocates
	// (putting a bare slice into a sync.Pool would allocate its header).
	holders = sync.Pool{New: func() any { return new([]byte) }}
)

// Get returns an empty buffer with capacity Size.
func Get() []byte { return get(&pool) }

// GetSmall returns an empty buffer with capacity SmallSize.
func GetSmall() []byte { return get(&small) }

func get(from *sync.Pool) []byte {
	p := from.Get().(*[]byte)
	b := (*p)[:0]
	*p = nil
	holders.Put(p)
	return b
}

// Pooled reports whether b has a pooled capacity: one Put would keep.
func Pooled(b []byte) bool { return cap(b) == Size || cap(b) == SmallSize }

// Put recycles b (of either pooled size). b must not be used afterwards.
func Put(b []byte) {
	var to *sync.Pool
	switch cap(b) {
	case Size:
		to = &pool
	case SmallSize:
		to = &small
	default:
		return
	}
	p := holders.Get().(*[]byte)
	*p = b[:0]
	to.Put(p)
}
