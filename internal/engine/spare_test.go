package engine

import "testing"

// TestSpares: what a worker gives back, the loop takes (the same objects,
// after its own list), each list keeps at most maxSpare, a slot whose
// buffer grew past spareSlotBuf is not kept (it goes to slotPool), and
// the count the loop reads without the lock matches the lists.
func TestSpares(t *testing.T) {
	var sp spares
	small := func() *headSlot { return &headSlot{buf: make([]byte, 0, 512)} }
	big := &headSlot{buf: make([]byte, 0, spareSlotBuf+1)}
	slots := []*headSlot{small(), small(), big}
	recs := []*request{{}, {}}
	sp.giveBack(slots, recs)
	if n := sp.returned.Load(); n != 4 || len(sp.retSlots) != 2 || sp.retSlots[0] == big || sp.retSlots[1] == big {
		t.Fatalf("returned = %d, %d slots kept, after giving 2 slots (and one too big) and 2 records, want 4 and 2", n, len(sp.retSlots))
	}
	own := small()
	sp.putSlot(own)
	if got := sp.takeSlot(); got != own {
		t.Fatal("the loop's own slot was not taken first")
	}
	for i := range 2 {
		if got := sp.takeSlot(); got != slots[1-i] {
			t.Fatalf("take %d did not return a slot given back", i)
		}
	}
	for range 2 {
		if r := sp.takeRecord(); r != recs[0] && r != recs[1] {
			t.Fatal("a record given back was not taken")
		}
	}
	if n := sp.returned.Load(); n != 0 || len(sp.retSlots)+len(sp.retRecords) != 0 {
		t.Fatalf("returned = %d, lists %d and %d, after taking everything", n, len(sp.retSlots), len(sp.retRecords))
	}
	many := make([]*headSlot, maxSpare+10)
	manyRecs := make([]*request, maxSpare+10)
	for i := range many {
		many[i], manyRecs[i] = small(), &request{}
	}
	sp.giveBack(many, manyRecs)
	if len(sp.retSlots) != maxSpare || len(sp.retRecords) != maxSpare || sp.returned.Load() != 2*maxSpare {
		t.Fatalf("kept %d slots and %d records (count %d), want %d each", len(sp.retSlots), len(sp.retRecords), sp.returned.Load(), maxSpare)
	}
	for range maxSpare + 10 {
		sp.putSlot(small())
	}
	if len(sp.slots) != maxSpare {
		t.Fatalf("the loop's list holds %d, want %d", len(sp.slots), maxSpare)
	}
}
