package engine

import (
	"net/http"
	"time"

	"github.com/waitron/waitron/internal/adapter"
)

// The worker side of a request: serving it through the adapter, then
// counting and logging its response. Worker only.

// serve runs on worker wk: it waits for a spooled body, then runs the
// handler through the adapter.
func (e *env) serve(r *request, wk *worker) {
	x, body := &r.x, r.body
	// Before serving: once the response is out, the head may be reused.
	method := methodIndex(x.Head.MethodBytes())
	var head servedHead
	if e.access != nil {
		head = headOf(x)
	}
	defer func() {
		end := wk.doneAt // the response's end, if the worker wrote it whole itself
		wk.doneAt = 0
		if b, ok := x.Out.(*batch); ok && b.heldCur {
			// Held back by its batch: counted and logged when it leaves.
			b.heldCur = false
			b.unsent = append(b.unsent, served{r: r, method: method, head: head})
			return
		}
		e.account(served{r: r, method: method, head: head}, end, nil)
	}()
	if qt := e.cfg.queueTimeout; qt > 0 && time.Duration(e.clock.stamp()-r.start) > qt {
		// Waited too long for a worker: the client (or its load balancer)
		// is better served by a prompt 503 than by a late answer.
		e.noteShed("queue_timeout")
		adapter.Refuse(&e.acfg, x, http.StatusServiceUnavailable, "The request waited too long for a worker (queue_timeout)")
		return
	}
	if body != nil && body.n > 0 {
		rc, err := body.reader()
		if err != nil {
			// Counted and logged as any response (the deferred account).
			e.log.Error("the request body could not be stored; answering 500", "remote", x.RemoteStr,
				"method", string(x.Head.MethodBytes()), "target", string(x.Head.TargetBytes()), "err", err)
			adapter.Refuse(&e.acfg, x, 500, "The request body could not be stored")
			return
		}
		x.Body = rc
	}
	if e.serveX != nil {
		e.serveX(&e.acfg, x)
		return
	}
	adapter.Serve(&e.acfg, e.handler, x)
}

// served is a request whose handler has returned, with what its
// accounting needs: its method's index and, with an access log, its head
// as it was read (its slot may be reused once the response is out).
type served struct {
	r      *request
	method int
	head   servedHead
}

// account counts the response to sv.r and logs its access line, with its
// duration from the request's arrival to end (zero: now). It counts into
// t when one is given (a burst's responses, settled together), else
// straight into the server's counters. Worker only, after the adapter
// returned.
func (e *env) account(sv served, end stamp, t *tally) {
	x := &sv.r.x
	st := x.Status()
	if st == 0 {
		return
	}
	if end == 0 {
		end = e.clock.stamp()
	}
	d := time.Duration(end - sv.r.start)
	if t != nil {
		t.add(sv.method, st, d)
	} else {
		e.counts.response(sv.method, st, d)
	}
	if e.access != nil {
		e.logServed(sv.r, sv.head, d)
	}
}
