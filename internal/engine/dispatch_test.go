package engine

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// counter is one pusher's count of tasks not yet run, on a cache line of
// its own.
type counter struct {
	n atomic.Int64
	_ [56]byte
}

// countTask is a task that only counts that it ran.
type countTask struct{ c *counter }

func (t countTask) run(*worker) { t.c.n.Add(-1) }

// BenchmarkDispatch hands tasks to a dispatcher of 4 workers from as many
// "event loops" as there are Ps (run with -cpu 1,2,4,8,16): the cost of
// one hand-off, pushed and run, which must not grow as loops are added.
func BenchmarkDispatch(b *testing.B) {
	d, err := newDispatcher(4)
	if err != nil {
		b.Fatal(err)
	}
	defer d.release()
	var mu sync.Mutex
	var counters []*counter
	b.RunParallel(func(pb *testing.PB) {
		q, c := d.newQueue(), new(counter) // one loop per P
		mu.Lock()
		counters = append(counters, c)
		mu.Unlock()
		for pb.Next() {
			c.n.Add(1)
			d.push(q, countTask{c})
		}
	})
	for _, c := range counters {
		for c.n.Load() > 0 {
			runtime.Gosched()
		}
	}
}

// TestDispatchRunsEverything: tasks pushed from several loops at once all
// run, never more than threads at a time, and every worker leaves once
// the queues are empty (no lost wake-up leaves a task behind), whether
// workers linger before leaving or not.
func TestDispatchRunsEverything(t *testing.T) {
	for _, linger := range []bool{false, true} {
		t.Run(fmt.Sprintf("linger=%v", linger), func(t *testing.T) { testDispatchRunsEverything(t, linger) })
	}
}

func testDispatchRunsEverything(t *testing.T, linger bool) {
	d, err := newDispatcher(3)
	if err != nil {
		t.Fatal(err)
	}
	defer d.release()
	d.linger = linger
	var running, most atomic.Int32
	var ran sync.WaitGroup
	const loops, each = 8, 2000
	ran.Add(loops * each)
	var pushers sync.WaitGroup
	for range loops {
		pushers.Add(1)
		go func() {
			defer pushers.Done()
			q := d.newQueue()
			for range each {
				d.push(q, taskFunc(func() {
					n := running.Add(1)
					for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
					}
					runtime.Gosched()
					running.Add(-1)
					ran.Done()
				}))
			}
		}()
	}
	pushers.Wait()
	done := make(chan struct{})
	go func() { ran.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		r, q := d.load()
		t.Fatalf("tasks left behind: %d running, %d queued", r, q)
	}
	if m := most.Load(); m > 3 {
		t.Errorf("%d tasks ran at once, threads is 3", m)
	}
	for deadline := time.Now().Add(10 * time.Second); d.busy(); {
		if time.Now().After(deadline) {
			t.Fatal("workers still counted with nothing queued")
		}
		runtime.Gosched()
	}
}

type taskFunc func()

func (f taskFunc) run(*worker) { f() }

// TestYieldAfter follows a loop's choice of when to give its P to the
// workers: at once while requests come one at a time (but for a probe
// every probeEvery hand-offs), in batches of yieldBatch while full batches
// form, and at once again after a stretch that ended short of one.
func TestYieldAfter(t *testing.T) {
	var lc loopConns
	// One at a time: each hand-off finds the queue empty (waiting 1).
	for i := 1; i < probeEvery; i++ {
		if !lc.yieldAfter(1, true) {
			t.Fatalf("hand-off %d, one at a time: no yield", i)
		}
	}
	if lc.yieldAfter(1, true) {
		t.Fatal("hand-off probeEvery: yielded; want a probe")
	}
	// The probe's stretch fills a batch: only its last hand-off yields.
	for w := int64(2); w <= yieldBatch; w++ {
		if got := lc.yieldAfter(w, true); got != (w == yieldBatch) {
			t.Fatalf("probe, %d waiting: yield %v", w, got)
		}
	}
	// Full batches go on (the workers emptied the queue at the yield).
	for round := 0; round < 3; round++ {
		for w := int64(1); w <= yieldBatch; w++ {
			if got := lc.yieldAfter(w, false); got != (w == yieldBatch) {
				t.Fatalf("batch %d, %d waiting: yield %v", round, w, got)
			}
		}
	}
	// A stretch that ends short of a batch (the round ended, and gnet's
	// yield let the workers empty the queue) ends batching.
	for w := int64(1); w <= 5; w++ {
		if lc.yieldAfter(w, true) {
			t.Fatalf("short stretch, %d waiting: yielded", w)
		}
	}
	if !lc.yieldAfter(1, true) {
		t.Fatal("after a short stretch: no yield")
	}
	// No worker to give the P to: no yield even one at a time.
	if lc.yieldAfter(1, false) {
		t.Fatal("nothing started or lingering: yielded")
	}
}

// TestRetireQueues: the queues of stopped event loops leave the workers'
// scan: an empty one at once, one still holding tasks once a worker has
// taken them (each task still runs), and the live queues stay.
func TestRetireQueues(t *testing.T) {
	d, err := newDispatcher(1)
	if err != nil {
		t.Fatal(err)
	}
	defer d.release()
	live, empty, busy := d.newQueue(), d.newQueue(), d.newQueue()
	ran, gate := make(chan int, 3), make(chan struct{})
	d.push(live, signalTask{0, gate, ran}) // holds the one worker, so busy's tasks wait
	d.push(busy, signalTask{1, nil, ran})
	d.push(busy, signalTask{2, nil, ran})
	d.retire([]*runQueue{empty, busy})
	if qs := *d.queues.Load(); len(qs) != 2 || qs[0] != live || qs[1] != busy {
		t.Fatalf("after retiring an empty and a busy queue: %d queues", len(qs))
	}
	close(gate)
	for want := range 3 {
		select {
		case got := <-ran:
			if got != want {
				t.Fatalf("task %d ran, want %d", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("task %d did not run", want)
		}
	}
	d.prune()
	if qs := *d.queues.Load(); len(qs) != 1 || qs[0] != live || len(d.retired) != 0 {
		t.Fatalf("after the busy one drained: %d queues, %d retired", len(qs), len(d.retired))
	}
}

// signalTask waits for gate (if any), then sends its number on ran.
type signalTask struct {
	n    int
	gate chan struct{}
	ran  chan int
}

func (t signalTask) run(*worker) {
	if t.gate != nil {
		<-t.gate
	}
	t.ran <- t.n
}
