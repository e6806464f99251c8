package engine

import (
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/panjf2000/ants/v2"
)

// dispatcher hands complete requests from the event loops to at most
// threads workers, goroutines from an ants pool. Each event loop has a
// queue of its own (runQueue), so loops never contend with each other to
// hand a request over; a worker takes from the queues in turn, FIFO within
// each, so no loop's clients starve another's. push never blocks, so the
// loop can call it: the queues are unbounded like waitress's task queue,
// and a worker is started only while fewer than threads run. A worker
// that finds every queue empty leaves (with linger, after giving its P up
// once and looking again); a worker whose handler hijacked its
// connection leaves the count (worker.detach): hijacked handlers run
// outside threads.
//
// A queue's mutex and count are taken by its loop to push and by a worker
// to take: with one loop per core, the contention is one loop and the
// workers serving it at that moment, never all loops on one lock. The
// count of running workers is one atomic that pushes only read while
// every worker runs (BenchmarkDispatch).
type dispatcher struct {
	threads int32
	active  atomic.Int32 // workers running tasks; never more than threads (written when one starts or leaves)
	mu      sync.Mutex   // serialises changing the queues
	queues  atomic.Pointer[[]*runQueue]
	retired []*runQueue // stopped loops' queues still holding tasks (under mu; see retire)
	pool    *ants.Pool
	drainFn func()        // d.drain, made once: a method value allocates each time it is taken
	idle    chan struct{} // poked when the last running worker leaves (Shutdown waits for it)
	// linger makes a worker that finds every queue empty give its P up
	// once before it leaves (set by Serve with yieldToWorkers: every P
	// runs an event loop, so the loop that has its P then may push the
	// next request, which the worker takes without a new start); lingering
	// counts those workers, so that a push they will see starts none.
	linger    bool
	lingering atomic.Int32
}

// runQueue is one event loop's FIFO of tasks. Its count is its own (no
// count shared by all loops), read without the lock to skip empty queues.
type runQueue struct {
	mu    sync.Mutex
	tasks []task
	head  int
	n     atomic.Int64 // tasks in it
	_     [64]byte     // keeps two loops' queues off one cache line
}

func newDispatcher(threads int) (*dispatcher, error) {
	// The pool has room for twice threads goroutines: a worker that has just
	// left drain() may not be back in the pool yet when the next one is
	// submitted. active, not the pool size, bounds concurrency.
	pool, err := ants.NewPool(2*threads, ants.WithNonblocking(true))
	if err != nil {
		return nil, err
	}
	d := &dispatcher{threads: int32(threads), pool: pool, idle: make(chan struct{}, 1)}
	d.drainFn = d.drain
	d.queues.Store(&[]*runQueue{})
	return d, nil
}

// newQueue adds a queue (one per event loop). Any goroutine.
func (d *dispatcher) newQueue() *runQueue {
	q := &runQueue{}
	d.mu.Lock()
	old := *d.queues.Load()
	qs := append(append(make([]*runQueue, 0, len(old)+1), old...), q)
	d.queues.Store(&qs)
	d.mu.Unlock()
	return q
}

// retire takes the queues of event loops that have stopped (a restart of
// the loops makes new ones) out of what workers look at: at once if
// empty, else once their tasks are taken (prune). Without it every
// restart left its loops' queues for every idle worker to scan. Any
// goroutine; nothing pushes to qs any more.
func (d *dispatcher) retire(qs []*runQueue) {
	d.mu.Lock()
	d.retired = append(d.retired, qs...)
	d.mu.Unlock()
	d.prune()
}

// prune drops the retired queues that are empty: no loop pushes to them,
// so once empty they stay so. Any goroutine.
func (d *dispatcher) prune() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.retired) == 0 {
		return
	}
	drop := map[*runQueue]bool{}
	keep := d.retired[:0]
	for _, q := range d.retired {
		q.mu.Lock()
		empty := q.head == len(q.tasks)
		q.mu.Unlock()
		if empty {
			drop[q] = true
		} else {
			keep = append(keep, q)
		}
	}
	clear(d.retired[len(keep):])
	d.retired = keep
	if len(drop) == 0 {
		return
	}
	old := *d.queues.Load()
	qs := make([]*runQueue, 0, len(old))
	for _, q := range old {
		if !drop[q] {
			qs = append(qs, q)
		}
	}
	d.queues.Store(&qs) // a worker scanning the old list finds the dropped ones empty
}

// task is work for a worker: a request, or a burst of them (request.run).
type task interface{ run(wk *worker) }

// worker is one goroutine draining the queues. Only that goroutine touches
// it.
type worker struct {
	d        *dispatcher
	doneAt   stamp    // when push wrote its request's response (serve reads and clears it)
	unsent   []served // a batch's held responses (batch.unsent), its array kept for the next batch
	next     int      // the queue to look at first: the one after the last served
	detached bool     // its handler took the connection: it leaves once the task returns
}

// workerPool recycles workers: one starts for nearly every request when
// requests come one at a time. A request's turn points to the worker
// serving it (turn.wk) while it serves, and only then.
var workerPool = sync.Pool{New: func() any { return new(worker) }}

// push queues t on q and starts a worker if one may start; started says
// whether it did, or whether a lingering worker will take t (either way
// the loop gives its P up for it, unless it is batching: yieldAfter).
// q's loop only (or any goroutine, for a queue of its own).
func (d *dispatcher) push(q *runQueue, t task) (started bool) {
	q.mu.Lock()
	q.tasks = append(q.tasks, t)
	q.mu.Unlock()
	q.n.Add(1)
	if d.lingering.Load() > 0 {
		// A lingering worker looks again after this load (it stops
		// lingering, then takes): it will find t. Say "started", so that
		// the loop gives it the P.
		return true
	}
	return d.maybeStart()
}

// maybeStart starts a worker if fewer than threads run, and says whether
// it did.
func (d *dispatcher) maybeStart() bool {
	for {
		n := d.active.Load()
		if n >= d.threads {
			return false // a running worker will find the task before it leaves
		}
		if d.active.CompareAndSwap(n, n+1) {
			d.startWorker()
			return true
		}
	}
}

// startWorker runs a new worker, counted in active already.
func (d *dispatcher) startWorker() {
	if err := d.pool.Submit(d.drainFn); err != nil {
		// The pool is full of hijacked handlers' goroutines, or released:
		// run the worker on its own goroutine rather than lose requests.
		go d.drainFn()
	}
}

// take returns the next task, looking at the queues in turn from
// wk.next, or nil when all are empty.
func (wk *worker) take() task {
	qs := *wk.d.queues.Load()
	for i := range qs {
		k := (wk.next + i) % len(qs)
		q := qs[k]
		if q.n.Load() == 0 {
			continue
		}
		q.mu.Lock()
		if q.head == len(q.tasks) {
			q.mu.Unlock()
			continue
		}
		t := q.tasks[q.head]
		q.tasks[q.head] = nil
		q.head++
		if q.head == len(q.tasks) {
			q.tasks, q.head = q.tasks[:0], 0
		}
		q.mu.Unlock()
		q.n.Add(-1)
		wk.next = k + 1
		return t
	}
	return nil
}

// drain runs queued tasks until every queue is empty, or until its task's
// handler hijacked the connection.
func (d *dispatcher) drain() {
	wk := workerPool.Get().(*worker)
	*wk = worker{d: d}
	defer workerPool.Put(wk)
	for {
		t := wk.take()
		if t == nil && d.linger {
			d.lingering.Add(1)
			runtime.Gosched()
			d.lingering.Add(-1)
			t = wk.take()
		}
		if t == nil {
			// Leave, then look again: a push that saw every worker busy
			// (and started none) happened before this decrement, so its
			// task is seen here, or it sees the decrement and starts one.
			d.leave()
			if d.queued() == 0 || !d.rejoin() {
				return
			}
			continue
		}
		t.run(wk)
		if wk.detached {
			return // no longer counted: another worker took its place
		}
	}
}

// rejoin takes a worker's place again if one is free.
func (d *dispatcher) rejoin() bool {
	for {
		n := d.active.Load()
		if n >= d.threads {
			return false
		}
		if d.active.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// detach takes wk out of the count of threads while its handler goes on
// with a hijacked connection, and starts a worker in its place if requests
// are waiting. wk's goroutine only.
func (wk *worker) detach() {
	if wk.detached {
		return
	}
	d := wk.d
	wk.detached = true
	d.leave()
	if d.queued() > 0 {
		d.maybeStart()
	}
}

// leave takes a worker out of active, and pokes idle if it was the last.
func (d *dispatcher) leave() {
	if d.active.Add(-1) == 0 {
		select {
		case d.idle <- struct{}{}:
		default:
		}
	}
}

// queued returns the tasks waiting in all queues. Any goroutine.
func (d *dispatcher) queued() int64 {
	var n int64
	for _, q := range *d.queues.Load() {
		n += q.n.Load()
	}
	return n
}

// load returns the workers running and the tasks waiting. Any goroutine.
func (d *dispatcher) load() (running, queued int) {
	return int(d.active.Load()), int(d.queued())
}

// busy reports whether a worker is still running a task (a detached one,
// whose handler took its connection, does not count). Any goroutine.
func (d *dispatcher) busy() bool { return d.active.Load() > 0 }

func (d *dispatcher) release() { d.pool.Release() }
