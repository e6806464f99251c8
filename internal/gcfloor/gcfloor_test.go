package gcfloor

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
)

func TestPercent(t *testing.T) {
	const mib = 1 << 20
	cases := []struct {
		live, floor uint64
		want        int
	}{
		{0, 16 * mib, 400},       // nothing measured: the minimum heap is the floor
		{mib / 2, 16 * mib, 400}, // nearly empty: still the minimum heap
		{3 * mib, 16 * mib, 400}, // 3*(1+4) = 15 MiB < 16
		{6 * mib, 16 * mib, 166}, // live*(1+p) reaches the floor first
		{8 * mib, 16 * mib, 100}, // half the floor: Go's own goal
		{12 * mib, 16 * mib, 100},
		{40 * mib, 16 * mib, 100}, // above the floor: never below Base
		{mib, 4 * mib, 100},       // a floor at Go's own minimum changes nothing
		{0, 64 * mib, 1600},
		{0, 1 << 62, 1 << 20}, // a huge floor: GOGC bounded, not overflowed
		{1, 1 << 62, 1 << 20},
	}
	for _, c := range cases {
		if got := Percent(c.live, c.floor); got != c.want {
			t.Errorf("Percent(%d MiB live, %d MiB floor) = %d, want %d", c.live/mib, c.floor/mib, got, c.want)
		}
	}
}

// gogc reads the collector's current GOGC.
func gogc(t *testing.T) int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return int(s[0].Value.Uint64())
}

// TestFloorFollowsCollections: the floor raises GOGC at once, re-adjusts
// after collections (its finalizer re-arms), and Stop gives Base back.
func TestFloorFollowsCollections(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(Base)) // whatever GOGC the environment set
	f := Start(64 << 20)
	if got := gogc(t); got != 1600 || f.Percent() != 1600 {
		t.Fatalf("after Start: GOGC %d, Percent %d, want 1600", got, f.Percent())
	}
	// Hold a live heap of about 40 MiB: above half the floor, so after
	// the next collections the floor must step back to Base.
	hold := make([][]byte, 40)
	for i := range hold {
		hold[i] = make([]byte, 1<<20)
	}
	for i := 0; i < 50 && f.Percent() != Base; i++ {
		runtime.GC() // the finalizer of this cycle adjusts; bounded tries
		runtime.Gosched()
	}
	if got := gogc(t); got != Base {
		t.Fatalf("with %d MiB live, GOGC %d, want %d", len(hold), got, Base)
	}
	runtime.KeepAlive(hold)
	hold = nil
	for i := 0; i < 50 && f.Percent() == Base; i++ {
		runtime.GC()
		runtime.Gosched()
	}
	if got := gogc(t); got <= Base {
		t.Fatalf("live heap freed, GOGC still %d", got)
	}
	f.Stop()
	if got := gogc(t); got != Base {
		t.Fatalf("after Stop: GOGC %d, want %d", got, Base)
	}
	runtime.GC()
	runtime.GC()
	if got := gogc(t); got != Base {
		t.Fatalf("a stopped floor moved GOGC to %d", got)
	}
}
