package engine

import (
	"sync"
	"sync/atomic"
)

// spares is an event loop's store of the head slots, and the fasthttp
// requests' records, that its connections' requests are done with. A
// sync.Pool operation each way per slot and per record was 7 % of a
// pinned profile of pipelined requests through the fasthttp adapter
// (sixteen of each per burst, given back one at a time by the worker and
// taken one at a time by the loop): here the loop takes from a list of
// its own without a lock, and a worker gives back a burst's slots and
// records under one lock, which the loop takes over in one swap when its
// own list is empty. Each list is bounded; what does not fit, and slots
// whose buffer has grown past spareSlotBuf, go to the sync.Pools, whose
// contents the collector may free.
type spares struct {
	// The loop's own.
	slots   []*headSlot
	records []*request

	mu         sync.Mutex
	retSlots   []*headSlot // given back by workers
	retRecords []*request
	returned   atomic.Int32 // len(retSlots) + len(retRecords), read without the lock
}

const (
	maxSpare     = 256     // per list: a burst of 16 on each of 16 connections
	spareSlotBuf = 4 << 10 // bytes of head a slot kept here may hold
)

// takeSlot returns a free head slot. Loop only.
func (sp *spares) takeSlot() *headSlot {
	if len(sp.slots) == 0 && sp.returned.Load() > 0 {
		sp.mu.Lock()
		sp.slots, sp.retSlots = sp.retSlots, sp.slots
		sp.returned.Add(-int32(len(sp.slots)))
		sp.mu.Unlock()
	}
	if n := len(sp.slots); n > 0 {
		sl := sp.slots[n-1]
		sp.slots[n-1] = nil
		sp.slots = sp.slots[:n-1]
		return sl
	}
	return slotPool.Get().(*headSlot)
}

// putSlot keeps sl, reset, for the loop's next request. Loop only.
func (sp *spares) putSlot(sl *headSlot) {
	if len(sp.slots) < maxSpare && cap(sl.buf) <= spareSlotBuf {
		sp.slots = append(sp.slots, sl)
		return
	}
	slotPool.Put(sl)
}

// takeRecord returns a zero record for a fasthttp handler's request. Loop
// only.
func (sp *spares) takeRecord() *request {
	if len(sp.records) == 0 && sp.returned.Load() > 0 {
		sp.mu.Lock()
		sp.records, sp.retRecords = sp.retRecords, sp.records
		sp.returned.Add(-int32(len(sp.records)))
		sp.mu.Unlock()
	}
	if n := len(sp.records); n > 0 {
		r := sp.records[n-1]
		sp.records[n-1] = nil
		sp.records = sp.records[:n-1]
		return r
	}
	return fastRequests.Get().(*request)
}

// giveBack takes back slots (reset) and records (zeroed) a worker is done
// with, under one lock. Any goroutine.
func (sp *spares) giveBack(slots []*headSlot, records []*request) {
	sp.mu.Lock()
	n := len(sp.retSlots) + len(sp.retRecords)
	for _, sl := range slots {
		if len(sp.retSlots) < maxSpare && cap(sl.buf) <= spareSlotBuf {
			sp.retSlots = append(sp.retSlots, sl)
		} else {
			slotPool.Put(sl)
		}
	}
	for _, r := range records {
		if len(sp.retRecords) < maxSpare {
			sp.retRecords = append(sp.retRecords, r)
		} else {
			fastRequests.Put(r)
		}
	}
	sp.returned.Add(int32(len(sp.retSlots) + len(sp.retRecords) - n))
	sp.mu.Unlock()
}
