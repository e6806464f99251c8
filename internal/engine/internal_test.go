package engine

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/waitron/waitron/limits"
)

// TestRecvBytes: recv_bytes is the most read from a socket at a time, so a
// 64 KiB body arrives in at least 64 reads with recv_bytes=1024 and in far
// fewer with the default, 65536.
func TestRecvBytes(t *testing.T) {
	reads := func(recv string) int64 {
		o := limits.Default()
		o.Set("listen", "127.0.0.1:0")
		o.Set("recv_bytes", recv)
		s, err := New(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) }), o, nil)
		if err != nil {
			t.Fatal(err)
		}
		go s.ListenAndServe()
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			s.Shutdown(ctx)
		}()
		c, err := net.Dial("tcp", s.Addrs()[0].String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		before := readCalls(t)
		io.WriteString(c, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 65536\r\nConnection: close\r\n\r\n"+strings.Repeat("r", 65536))
		io.ReadAll(c)
		return readCalls(t) - before
	}
	if n := reads("1024"); n < 64 {
		t.Errorf("recv_bytes=1024: %d reads for 64 KiB, want at least 64", n)
	}
	if n := reads("65536"); n >= 64 {
		t.Errorf("recv_bytes=65536: %d reads for 64 KiB, want far fewer than 64", n)
	}
}

// readCalls returns the read system calls the process has made so far
// (/proc/self/io's syscr): the server's reads of its clients among them.
func readCalls(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "syscr: "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no syscr in /proc/self/io")
	return 0
}

// TestLoopConnsSet: a loop's set of connections takes them in and out in
// any order, a second removal is a no-op, and a connection may leave the
// set while it is being visited without the visit missing the rest.
func TestLoopConnsSet(t *testing.T) {
	var lc loopConns
	cs := make([]*conn, 6)
	for i := range cs {
		cs[i] = &conn{}
		lc.add(cs[i])
	}
	members := func() map[*conn]bool {
		m := map[*conn]bool{}
		for c := range lc.all() {
			if m[c] {
				t.Fatal("a connection visited twice")
			}
			m[c] = true
		}
		return m
	}
	lc.remove(cs[0]) // the first added: the list's tail
	lc.remove(cs[5]) // the last added: its head
	lc.remove(cs[2]) // one inside
	lc.remove(cs[2]) // again: nothing
	lc.remove(&conn{})
	if m := members(); len(m) != 3 || !m[cs[1]] || !m[cs[3]] || !m[cs[4]] {
		t.Fatalf("set after removals: %v", m)
	}
	seen := 0
	for c := range lc.all() { // each leaves as it is visited, as a swept connection closes
		lc.remove(c)
		seen++
	}
	if seen != 3 || lc.head != nil {
		t.Fatalf("visited %d while they left; head %v", seen, lc.head)
	}
}

// TestWriteAll: a spooler's batch reaches its file whole and in order,
// also past the kernel's IOV_MAX buffers per writev and with empty ones.
func TestWriteAll(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "spool")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var bufs [][]byte
	var want []byte
	for i := range 1500 {
		b := []byte(strings.Repeat(string(rune('a'+i%26)), i%7))
		bufs = append(bufs, b)
		want = append(want, b...)
	}
	bufs = append(bufs, nil, []byte{}) // ending in empty ones
	if err := writeAll(f, bufs); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(f.Name())
	if err != nil || string(got) != string(want) {
		t.Fatalf("file holds %d bytes, want %d (%v)", len(got), len(want), err)
	}
	f.Close()
	if err := writeAll(f, [][]byte{[]byte("x")}); err == nil {
		t.Fatal("no error writing to a closed file")
	}
}

// TestDurationBounds: a response's duration falls in the bucket its
// seconds would put it in (DurationBuckets' bounds are inclusive), at
// and either side of every bound.
// TestTallyMatchesResponse: a burst's responses counted through a tally
// leave every counter as counting each with counters.response does, runs
// of alike responses and changes of method, class and bucket alike.
func TestTallyMatchesResponse(t *testing.T) {
	type resp struct {
		method, status int
		d              time.Duration
	}
	ms := time.Millisecond
	burst := []resp{{0, 200, ms}, {0, 200, ms}, {0, 200, 2 * ms}, {2, 200, 2 * ms}, {2, 404, 2 * ms},
		{2, 404, 7 * ms}, {0, 99, ms}, {0, 600, ms}, {0, 200, time.Minute}, {1, 200, 0}, {0, 200, ms}}
	var each, tallied counters
	tl := tally{k: &tallied}
	for _, r := range burst {
		each.response(r.method, r.status, r.d)
		tl.add(r.method, r.status, r.d)
	}
	tl.flush()
	for m := range each.requests {
		for c := range each.requests[m] {
			if a, b := each.requests[m][c].Load(), tallied.requests[m][c].Load(); a != b {
				t.Errorf("requests[%s][%s]: %d each, %d tallied", methodNames[m], statusClasses[c], a, b)
			}
		}
	}
	for i := range each.durations {
		if a, b := each.durations[i].Load(), tallied.durations[i].Load(); a != b {
			t.Errorf("durations[%d]: %d each, %d tallied", i, a, b)
		}
	}
	if a, b := each.durSum.Load(), tallied.durSum.Load(); a != b {
		t.Errorf("durations' sum: %d each, %d tallied", a, b)
	}
}

func TestDurationBounds(t *testing.T) {
	for i, s := range DurationBuckets {
		d := durationBounds[i]
		for _, x := range []time.Duration{d - 1, d, d + 1} {
			if (x.Seconds() > s) != (x > d) {
				t.Errorf("%v against the bound %v s: seconds and durations disagree", x, s)
			}
		}
	}
}

// TestLoopsRestartNamesTheClose: when gnet's loops stop without Shutdown
// (a failure inside gnet, stood in for by stopping its engine here), the
// connections it closes are counted as server_restart, not as the client's
// doing; Serve starts the loops again, and the listeners, which are
// waitron's own, serve new connections at once.
func TestLoopsRestartNamesTheClose(t *testing.T) {
	o := limits.Default()
	o.Set("listen", "127.0.0.1:0")
	s, err := New(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }), o, nil)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.ListenAndServe() }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		<-served
	}()
	addr := s.Addrs()[0].String()
	// get asks on a new connection and returns it with the answer.
	get := func(when string) net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		b := make([]byte, 512)
		n, _ := c.Read(b)
		if got := string(b[:n]); !strings.HasSuffix(got, "\r\n\r\nok") {
			t.Fatalf("%s: %q", when, got)
		}
		return c
	}
	c := get("before")
	first := s.gen.Load()
	now, cancel := context.WithCancel(context.Background())
	cancel()
	s.run.Load().eng.Stop(now) // as if gnet had failed: Shutdown did not ask
	<-first.ended
	if b, _ := io.ReadAll(c); len(b) != 0 {
		t.Errorf("the kept connection got %q; want it closed", b)
	}
	if n := s.Stats().Closed[CloseServerRestart]; n != 1 {
		t.Errorf("closes counted as server_restart: %d (%v)", n, s.Stats().Closed)
	}
	// A connection made while the loops restart waits for them (the
	// listener is waitron's, and its accept loop waits for the next run).
	get("after the restart")
	if s.Stats().Restarts != 1 {
		t.Errorf("restarts: %d", s.Stats().Restarts)
	}
}
