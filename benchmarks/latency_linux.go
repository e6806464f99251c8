//go:build linux

package main

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// runLatency sends requests at latencyRate over 64 keep-alive connections,
// each on its own schedule, and reports the 99th percentile of the time
// from when a request was due to when its response was read (so a server
// that falls behind is charged for the wait: no coordinated omission). The
// first second is warm-up; the note adds p50 and p99.9 from due, and p50
// and p99 from the request's write to its response's read.
//
// The generator is one OS thread with its own epoll set and a timerfd (as
// wrk2 is), not goroutines sleeping on Go's timers: Go's network poller
// waits in whole milliseconds (a timer due in 0.3 ms is run after 1 ms
// unless a socket event wakes the poller first), so a goroutine's send was
// up to 1 ms late, and later the less often responses arrived to wake it —
// the faster the server, the later its requests went out (p50 from due
// 0.45–0.75 ms for the gnet servers and fasthttp against net/http's
// 0.10–0.30 at 16.9k req/s with that generator). A timerfd fires within
// microseconds of its time, with the thread's timer slack set to 1 ns.
func runLatency(_ workload, addr string, _ int) (float64, string) {
	res := make(chan latencyResult, 1)
	// The thread is locked and never unlocked: it ends with the goroutine,
	// and its timer slack with it.
	go func() { runtime.LockOSThread(); res <- openLoop(addr, latencyRate, 64, time.Second, *duration) }()
	r := <-res
	if r.err != nil && len(r.due) == 0 {
		return 0, r.err.Error()
	}
	slices.Sort(r.due)
	slices.Sort(r.sent)
	pct := func(d []time.Duration, p float64) time.Duration { return d[min(len(d)-1, int(p*float64(len(d))))] }
	ms := func(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 2, 64) }
	note := fmt.Sprintf("%.0f req/s; p50 %s, p99.9 %s ms; from the write: p50 %s, p99 %s ms",
		float64(len(r.due))/duration.Seconds(), ms(pct(r.due, 0.5)), ms(pct(r.due, 0.999)),
		ms(pct(r.sent, 0.5)), ms(pct(r.sent, 0.99)))
	if r.err != nil {
		note += ", error: " + r.err.Error()
	}
	return float64(pct(r.due, 0.99)) / 1e6, note
}

// latencyResult is what openLoop measured: for each response read after
// the warm-up, the time from when its request was due, and from when it
// was written; err is the first failure, which ended the run.
type latencyResult struct {
	due, sent []time.Duration
	err       error
}

// loopConn is one of openLoop's connections.
type loopConn struct {
	fd   int
	due  int64 // CLOCK_MONOTONIC ns: when its next request is due
	sent int64 // when the request in flight was written
	busy bool  // a request is in flight
	in   []byte
}

// latencyRequest is the request openLoop sends.
var latencyRequest = []byte("GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")

// openLoop runs the fixed-rate load on the calling goroutine, which must
// be locked to its thread: conns connections to addr, each sending a
// request every conns/rate seconds (staggered), the next only once the
// previous response was read; the responses of requests due in the first
// warm are not counted, and no request is due after warm+d.
func openLoop(addr string, rate float64, conns int, warm, d time.Duration) (r latencyResult) {
	if err := unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0); err != nil {
		return latencyResult{err: fmt.Errorf("timer slack: %w", err)}
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return latencyResult{err: err}
	}
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return latencyResult{err: err}
	}
	defer unix.Close(ep)
	tfd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return latencyResult{err: err}
	}
	defer unix.Close(tfd)
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, tfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: -1}); err != nil {
		return latencyResult{err: err}
	}
	cs := make([]loopConn, conns)
	for i := range cs {
		cs[i].fd = -1
	}
	defer func() {
		for _, c := range cs {
			if c.fd >= 0 {
				unix.Close(c.fd)
			}
		}
	}()
	for i := range cs {
		fd, err := dialNonblock(ap)
		if err != nil {
			return latencyResult{err: err}
		}
		cs[i].fd = fd
		if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(i)}); err != nil {
			return latencyResult{err: err}
		}
	}
	interval := int64(float64(time.Second) * float64(conns) / rate)
	start := monotonic() + int64(50*time.Millisecond)
	warmEnd, end := start+int64(warm), start+int64(warm+d)
	for i := range cs {
		cs[i].due = start + interval*int64(i)/int64(conns)
	}
	deadline := end + int64(10*time.Second) // a response later than this is a failure
	events := make([]unix.EpollEvent, conns+1)
	buf := make([]byte, 64<<10)
	for {
		now := monotonic()
		next, open := int64(-1), false
		for i := range cs {
			c := &cs[i]
			if c.busy {
				open = true
				continue
			}
			if c.due >= end {
				continue
			}
			if c.due <= now {
				if n, err := unix.Write(c.fd, latencyRequest); err != nil || n != len(latencyRequest) {
					return r.fail(fmt.Errorf("write: %d bytes, %v", n, err))
				}
				c.busy, c.sent, open = true, monotonic(), true
				continue
			}
			open = true
			if next < 0 || c.due < next {
				next = c.due
			}
		}
		if !open {
			return r
		}
		if now > deadline {
			return r.fail(errors.New("no response in 10 s"))
		}
		if next >= 0 {
			at := unix.ItimerSpec{Value: unix.NsecToTimespec(next)}
			if err := unix.TimerfdSettime(tfd, unix.TFD_TIMER_ABSTIME, &at, nil); err != nil {
				return r.fail(err)
			}
		}
		n, err := unix.EpollWait(ep, events, 1000)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return r.fail(err)
		}
		for _, ev := range events[:n] {
			if ev.Fd < 0 {
				var b [8]byte
				unix.Read(tfd, b[:]) // clears its expiry; EAGAIN if already read
				continue
			}
			c := &cs[ev.Fd]
			for {
				k, err := unix.Read(c.fd, buf)
				if err == unix.EAGAIN {
					break
				}
				if err != nil || k == 0 {
					return r.fail(fmt.Errorf("read: %v (connection closed: %v)", err, k == 0))
				}
				c.in = append(c.in, buf[:k]...)
			}
			for len(c.in) > 0 {
				m, err := responseLen(c.in)
				if err != nil {
					return r.fail(err)
				}
				if m == 0 {
					break
				}
				if !c.busy {
					return r.fail(errors.New("a response with no request"))
				}
				c.in = c.in[:copy(c.in, c.in[m:])]
				got := monotonic()
				if c.due >= warmEnd {
					r.due = append(r.due, time.Duration(got-c.due))
					r.sent = append(r.sent, time.Duration(got-c.sent))
				}
				c.busy, c.due = false, c.due+interval
			}
		}
	}
}

func (r latencyResult) fail(err error) latencyResult {
	r.err = err
	return r
}

// dialNonblock connects a TCP socket to ap (on loopback the connect is
// done at once) and makes it non-blocking, with TCP_NODELAY.
func dialNonblock(ap netip.AddrPort) (int, error) {
	var sa unix.Sockaddr
	family := unix.AF_INET
	if ap.Addr().Is4() {
		sa = &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	} else {
		family = unix.AF_INET6
		sa = &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err = unix.Connect(fd, sa); err == nil {
		if err = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err == nil {
			err = unix.SetNonblock(fd, true)
		}
	}
	if err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("connect %s: %w", ap, err)
	}
	return fd, nil
}

// monotonic reads CLOCK_MONOTONIC in nanoseconds, the timerfd's clock.
func monotonic() int64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

// responseLen returns the length of the complete response at the start
// of b (0 while it is incomplete): a 200 whose body has a Content-Length,
// as every server's /plaintext answers.
func responseLen(b []byte) (int, error) {
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		if len(b) > 64<<10 {
			return 0, errors.New("a response head over 64 KiB")
		}
		return 0, nil
	}
	head := b[:end+2]
	if len(head) < 12 || !bytes.HasPrefix(head, []byte("HTTP/1.1 200 ")) {
		line, _, _ := bytes.Cut(head, []byte("\r\n"))
		return 0, fmt.Errorf("status line %q", line)
	}
	length := -1
	_, rest, _ := bytes.Cut(head, []byte("\r\n"))
	for len(rest) > 0 {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		k, v, ok := bytes.Cut(line, []byte(":"))
		if ok && bytes.EqualFold(k, []byte("content-length")) {
			n, err := strconv.Atoi(string(bytes.TrimSpace(v)))
			if err != nil || n < 0 {
				return 0, fmt.Errorf("Content-Length %q", v)
			}
			length = n
		}
	}
	if length < 0 {
		return 0, errors.New("a response without Content-Length")
	}
	if total := end + 4 + length; len(b) >= total {
		return total, nil
	}
	return 0, nil
}
