package engine

import (
	"bytes"
	"testing"

	"github.com/waitron/waitron/internal/bufpool"
)

// TestBatchHoldJoinsShortResponses: the responses of a burst held back
// leave in the first pooled buffer when they fit, in order; a slice not
// of a pooled capacity (which may share its array) is copied from, never
// written into.
func TestBatchHoldJoinsShortResponses(t *testing.T) {
	pooledBuf := func(s string) []byte { return append(bufpool.GetSmall(), s...) }
	b := &batch{}
	b.hold([][]byte{pooledBuf("one;")})
	b.hold([][]byte{pooledBuf("two;"), pooledBuf("three;")})
	if len(b.pending) != 1 || string(b.pending[0]) != "one;two;three;" {
		t.Fatalf("pending = %q, want one buffer \"one;two;three;\"", b.pending)
	}

	b = &batch{}
	shared := make([]byte, 4, 64) // another's array: the room after it is not free
	copy(shared, "four")
	b.hold([][]byte{shared})
	b.hold([][]byte{pooledBuf(";five"), pooledBuf(";six")})
	if len(b.pending) != 2 || string(b.pending[1]) != ";five;six" {
		t.Fatalf("pending = %q, want [\"four\" \";five;six\"]", b.pending)
	}
	if got := string(bytes.Join(b.pending, nil)); got != "four;five;six" {
		t.Fatalf("joined = %q, want the responses in order", got)
	}
	if string(shared[:cap(shared)][4:9]) == ";five" {
		t.Fatal("a slice of another's array was appended into")
	}
}
