package engine

import (
	"sync"
	"sync/atomic"
)

// spares is an event loop's store of the head slots, and the requests'
// records, that its connections' requests are done with. A sync.Pool
// operation each way per slot and per record showed in profiles of
// pipelined requests (sixteen of each per burst, given back one at a time
// by the worker and taken one at a time by the loop): here the loop takes from a list of
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
	if sl := take(sp, &sp.slots, &sp.retSlots); sl != nil {
		return sl
	}
	return slotPool.Get().(*headSlot)
}

// take pops the last of own, first taking over what workers gave back
// (ret) when own is empty and something came back. Loop only.
func take[T any](sp *spares, own, ret *[]*T) *T {
	if len(*own) == 0 && sp.returned.Load() > 0 {
		sp.mu.Lock()
		*own, *ret = *ret, *own
		sp.returned.Add(-int32(len(*own)))
		sp.mu.Unlock()
	}
	n := len(*own)
	if n == 0 {
		return nil
	}
	x := (*own)[n-1]
	(*own)[n-1] = nil
	*own = (*own)[:n-1]
	return x
}

// putSlot keeps sl, reset, for the loop's next request. Loop only.
func (sp *spares) putSlot(sl *headSlot) { keepSlot(&sp.slots, sl) }

// keepSlot appends sl to list if it has room and sl's buffer is small,
// else gives sl to slotPool.
func keepSlot(list *[]*headSlot, sl *headSlot) {
	if len(*list) < maxSpare && cap(sl.buf) <= spareSlotBuf {
		*list = append(*list, sl)
		return
	}
	slotPool.Put(sl)
}

// takeRecord returns a zero request record. Loop only.
func (sp *spares) takeRecord() *request {
	if r := take(sp, &sp.records, &sp.retRecords); r != nil {
		return r
	}
	return spareRecords.Get().(*request)
}

// giveBack takes back slots (reset) and records (zeroed) a worker is done
// with, under one lock. Any goroutine.
func (sp *spares) giveBack(slots []*headSlot, records []*request) {
	sp.mu.Lock()
	n := len(sp.retSlots) + len(sp.retRecords)
	for _, sl := range slots {
		keepSlot(&sp.retSlots, sl)
	}
	for _, r := range records {
		if len(sp.retRecords) < maxSpare {
			sp.retRecords = append(sp.retRecords, r)
		} else {
			spareRecords.Put(r)
		}
	}
	sp.returned.Add(int32(len(sp.retSlots) + len(sp.retRecords) - n))
	sp.mu.Unlock()
}
