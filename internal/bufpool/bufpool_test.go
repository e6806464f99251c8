package bufpool

import "testing"

var sink []byte

// BenchmarkGetPut is a response's two buffers: a small one for the head
// and a full one for the body, taken and given back.
func BenchmarkGetPut(b *testing.B) {
	for i := 0; i < b.N; i++ {
		h, body := GetSmall(), Get()
		h = append(h, "HTTP/1.1 200 OK\r\n"...)
		body = append(body, "Hello, World!"...)
		sink = h
		Put(body)
		Put(h)
	}
}

// TestPool: buffers come back empty with their capacity, a buffer given
// back is handed out again, other capacities are not kept, and neither
// Get nor Put allocates.
func TestPool(t *testing.T) {
	for _, c := range []struct {
		get  func() []byte
		size int
	}{{Get, Size}, {GetSmall, SmallSize}} {
		b := c.get()
		if len(b) != 0 || cap(b) != c.size {
			t.Fatalf("got len %d cap %d, want 0 and %d", len(b), cap(b), c.size)
		}
		if !Pooled(b) {
			t.Fatal("a pooled buffer is not Pooled")
		}
		b = append(b, "x"...)
		Put(b)
		if a := testing.AllocsPerRun(100, func() { Put(c.get()) }); a != 0 {
			t.Errorf("Get and Put allocate %v times", a)
		}
	}
	odd := make([]byte, 0, 1000)
	if Pooled(odd) {
		t.Fatal("a 1000-byte buffer is Pooled")
	}
	Put(odd) // not kept; must not panic
	own := make([]byte, 10, Size)
	Put(own) // a slice of the pool's capacity made elsewhere is kept as well
	if b := Get(); len(b) != 0 || cap(b) != Size {
		t.Fatalf("got len %d cap %d after putting a made buffer", len(b), cap(b))
	}
}
