package engine

import (
	"time"

	"golang.org/x/sys/unix"
)

// The timeouts waitress lacks (its §4.16-4.17): a request head must arrive
// within request_header_timeout; a body may not stall longer than
// request_body_timeout and must keep request_body_min_rate; a client that
// takes no response bytes for send_timeout is dropped, which also frees a
// handler blocked writing to it. Each event loop checks its own
// connections once a second.

// checkDeadlines asks every loop to check its connections. OnTick
// goroutine only.
func (s *Server) checkDeadlines(now time.Time) {
	s.onEveryConn(func(c *conn) { c.checkDeadlines(now) })
}

// checkDeadlines enforces the timeouts on one connection. Loop only.
func (c *conn) checkDeadlines(now time.Time) {
	if c.w.q.closed.Load() || c.st.eof || c.st.parked() || c.st.lingering() {
		return
	}
	if !c.e.hooks.noTickCollect {
		c.collect()
	}
	o := &c.e.cfg
	if !c.st.busy && !c.st.closing() {
		if !c.rd.InBody() {
			if !c.headSince.IsZero() && c.headSince.since(now) > o.headTimeout {
				// A client that sent nothing at all is simply closed.
				c.timeout(CloseHeaderTimeout, "request head not complete within request_header_timeout", c.inBuffered() > 0)
				return
			}
		} else {
			elapsed := c.bodySince.since(now)
			switch {
			case c.active.since(now) > o.bodyTimeout:
				c.timeout(CloseBodyTimeout, "request body stalled longer than request_body_timeout", true)
				return
			case o.bodyMinRate > 0 && elapsed > o.bodyTimeout &&
				float64(c.bodyGot) < elapsed.Seconds()*o.bodyMinRate:
				c.timeout(CloseBodyTimeout, "request body slower than request_body_min_rate", true)
				return
			}
		}
	}
	c.checkSend(now)
}

// checkSend closes the connection when output is pending and the client
// has acknowledged none of it for send_timeout. Progress is what the
// client took: the bytes handed to gnet, less what gnet still holds and
// what the kernel has not yet sent or had acknowledged (SIOCOUTQ). gnet's
// own writes are no measure: with a send buffer of megabytes it writes
// again only after a third of it drained, which takes a steady slow reader
// longer than send_timeout. The kernel is asked only while something may
// be pending. Loop only.
func (c *conn) checkSend(now time.Time) {
	handed := c.w.q.handed.Load()
	if handed == c.sentHanded && c.sentIdle {
		return // nothing handed over since nothing was pending
	}
	out := int64(c.gc.OutboundBuffered())
	queued, err := unix.IoctlGetInt(c.gc.Fd(), unix.SIOCOUTQ)
	if err != nil {
		queued = 0 // not a socket that says (a unix socket's queue is always delivered)
	}
	pending := out + int64(queued)
	taken := handed - pending
	c.sentHanded, c.sentIdle = handed, pending == 0
	if pending == 0 || taken != c.sentSeen {
		c.sentSeen, c.sentAt = taken, stampOf(now)
		return
	}
	if c.sentAt.since(now) > c.e.cfg.sendTimeout {
		c.e.log.Info("closing connection: the client took no response bytes within send_timeout",
			"remote", c.w.remoteStr, "unsent", pending)
		c.close(CloseSendTimeout, "")
	}
}

// timeout answers 408 (when the client sent part of a request) and
// closes. Loop only.
func (c *conn) timeout(r CloseReason, reason string, respond bool) {
	c.e.log.Info("closing connection: "+reason, "remote", c.w.remoteStr)
	c.dropBody()
	if respond {
		c.answerUnserved(408, "The request did not arrive in time ("+reason+")", r, c.refusedHead())
	}
	c.close(r, reason)
}
