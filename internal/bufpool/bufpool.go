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

// The pools hold pointers to the buffers' arrays: a pointer goes into an
// interface without an allocation, and a slice of pooled capacity gives
// its array back by conversion, so Get and Put are one pool operation
// each (boxing slices in recycled *[]byte holders took two:
// BenchmarkGetPut, a head's and a body's buffer, 99-110 ns before, 42-44
// after).
var (
	pool  = sync.Pool{New: func() any { return new([Size]byte) }}
	small = sync.Pool{New: func() any { return new([SmallSize]byte) }}
)

// Get returns an empty buffer with capacity Size.
func Get() []byte { return pool.Get().(*[Size]byte)[:0] }

// GetSmall returns an empty buffer with capacity SmallSize.
func GetSmall() []byte { return small.Get().(*[SmallSize]byte)[:0] }

// Pooled reports whether b has a pooled capacity: one Put would keep.
func Pooled(b []byte) bool { return cap(b) == Size || cap(b) == SmallSize }

// Put recycles b (of either pooled size). b must not be used afterwards.
// A slice of that capacity begins an array of that size (the pool's, or
// one made so), which is what is kept.
func Put(b []byte) {
	switch cap(b) {
	case Size:
		pool.Put((*[Size]byte)(b[:Size]))
	case SmallSize:
		small.Put((*[SmallSize]byte)(b[:SmallSize]))
	}
}
