package engine

import (
	"errors"
	"os"
	"testing"
)

// TestSpoolFilesKeptThenTrimmed: a spool file given back is reused by the
// next body; one not reused for keepIdle is closed by trim (an idle server
// holds no disk), and a file past the budget is closed at once.
func TestSpoolFilesKeptThenTrimmed(t *testing.T) {
	var k clock
	fc := newFileCache(t.TempDir(), &k)
	a, err := fc.get()
	if err != nil {
		t.Fatal(err)
	}
	fc.put(a, 1000)
	if b, _ := fc.get(); b != a {
		t.Fatal("the file given back was not reused")
	}
	fc.put(a, 1000)
	if fc.idle(k.stamp()) {
		t.Fatal("idle at once")
	}
	k.skew.Add(int64(keepIdle))
	if !fc.idle(k.stamp()) {
		t.Fatal("not idle after keepIdle")
	}
	fc.trim(k.stamp())
	if _, err := a.f.Stat(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("the idle file is still open: %v", err)
	}
	if len(fc.free) != 0 || fc.kept != 0 {
		t.Fatalf("after trim: %d kept, %d bytes", len(fc.free), fc.kept)
	}
	big, err := fc.get()
	if err != nil {
		t.Fatal(err)
	}
	fc.put(big, keepBytes+1)
	if _, err := big.f.Stat(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("a file over the budget was kept: %v", err)
	}
}
