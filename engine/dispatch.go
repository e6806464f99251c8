package engine

import (
	"sync"

	"github.com/panjf2000/ants/v2"
)

// dispatcher is the server's task FIFO, drained by at most threads workers
// from an ants pool. push never blocks, so the event loop can call it: the
// queue is unbounded like waitress's, and a worker is started only while
// fewer than threads are running. A worker whose handler hijacked its
// connection leaves the count (worker.detach): hijacked handlers run
// outside threads.
type dispatcher struct {
	mu      sync.Mutex
	queue   []task
	head    int
	active  int // workers draining the queue; never more than threads
	threads int
	pool    *ants.Pool
}

func newDispatcher(threads int) (*dispatcher, error) {
	// The pool has room for twice threads goroutines: a worker that has just
	// left drain() may not be back in the pool yet when the next one is
	// submitted. active, not the pool size, bounds concurrency.
	pool, err := ants.NewPool(2*threads, ants.WithNonblocking(true))
	if err != nil {
		return nil, err
	}
	return &dispatcher{threads: threads, pool: pool}, nil
}

// task is work for a worker: a request, or a burst of them (request.run).
type task interface{ run(wk *worker) }

// worker is one goroutine draining the queue. Only that goroutine touches
// it.
type worker struct {
	d        *dispatcher
	detached bool // its handler took the connection: it leaves once the task returns
}

// push queues t and starts a worker if one may start. Any goroutine.
func (d *dispatcher) push(t task) {
	d.mu.Lock()
	d.queue = append(d.queue, t)
	start := d.active < d.threads
	if start {
		d.active++
	}
	d.mu.Unlock()
	if start {
		d.startWorker()
	}
}

// startWorker runs a new worker, counted in active already.
func (d *dispatcher) startWorker() {
	if err := d.pool.Submit(d.drain); err != nil {
		// The pool is full of hijacked handlers' goroutines, or released:
		// run the worker on its own goroutine rather than lose requests.
		go d.drain()
	}
}

// drain runs queued tasks until the queue is empty, or until its task's
// handler hijacked the connection.
func (d *dispatcher) drain() {
	wk := &worker{d: d}
	for {
		d.mu.Lock()
		if d.head == len(d.queue) {
			d.queue, d.head = d.queue[:0], 0
			d.active--
			d.mu.Unlock()
			return
		}
		t := d.queue[d.head]
		d.queue[d.head] = nil
		d.head++
		d.mu.Unlock()
		t.run(wk)
		if wk.detached {
			return // no longer counted: another worker took its place
		}
	}
}

// detach takes wk out of the count of threads while its handler goes on
// with a hijacked connection, and starts a worker in its place if requests
// are waiting. wk's goroutine only.
func (wk *worker) detach() {
	d := wk.d
	wk.detached = true
	d.mu.Lock()
	d.active--
	start := d.head < len(d.queue) && d.active < d.threads
	if start {
		d.active++
	}
	d.mu.Unlock()
	if start {
		d.startWorker()
	}
}

// load returns the workers running and the tasks waiting. Any goroutine.
func (d *dispatcher) load() (running, queued int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.active, len(d.queue) - d.head
}

// busy reports whether a worker is still running a task (a detached one,
// whose handler took its connection, does not count). Any goroutine.
func (d *dispatcher) busy() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.active > 0
}

func (d *dispatcher) release() { d.pool.Release() }
