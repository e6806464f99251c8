package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/waitron/waitron/internal/benchutil"
)

// loadSpec describes the requests of a closed-loop workload.
type loadSpec struct {
	path     string
	conns    int
	pipeline int  // requests written at once per connection (0 or 1: none)
	close    bool // a new connection per request
	body     int  // POST body size (0: GET)
	// script, when set, is the wrk Lua script that makes the requests
	// (rotations of several); such workloads need wrk.
	script string
	// only2xx counts only 2xx responses (the noisy profile).
	only2xx bool
	// tls: the server speaks HTTPS (its certificate is not verified).
	tls bool
	// streams, when set, makes the load HTTP/2 (h2load): that many
	// concurrent streams per connection, over TLS (h2) or in the clear
	// (h2c by prior knowledge).
	streams int
}

// dial connects to addr, over TLS (HTTP/1.1 only) when tls is set.
func dial(addr string, secure bool, timeout time.Duration) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil || !secure {
		return c, err
	}
	tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	tc.SetDeadline(time.Now().Add(timeout))
	if err := tc.Handshake(); err != nil {
		c.Close()
		return nil, err
	}
	return tc, nil
}

func (s loadSpec) request() []byte {
	var b bytes.Buffer
	if s.body > 0 {
		fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n", s.path, s.body)
	} else {
		fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n", s.path)
	}
	if s.close {
		b.WriteString("Connection: close\r\n")
	}
	b.WriteString("\r\n")
	b.Write(bytes.Repeat([]byte("x"), s.body))
	one := b.Bytes()
	return bytes.Repeat(one, max(1, s.pipeline))
}

type loadStats struct {
	responses, errors int64
	elapsed           time.Duration
	note              string
}

// closedLoop runs spec for d: every connection sends its request (or
// pipelined batch) as soon as the previous answer is read. It is the
// fallback when wrk is not installed.
func closedLoop(spec loadSpec, addr string, d time.Duration) loadStats {
	req := spec.request()
	depth := max(1, spec.pipeline)
	var mu sync.Mutex
	var total loadStats
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for i := 0; i < spec.conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var n, errs int64
			var c net.Conn
			var br *bufio.Reader
			for time.Now().Before(deadline) {
				if c == nil {
					var err error
					if c, err = dial(addr, spec.tls, 5*time.Second); err != nil {
						errs++
						time.Sleep(10 * time.Millisecond)
						continue
					}
					br = bufio.NewReaderSize(c, 64<<10)
				}
				c.SetDeadline(time.Now().Add(10 * time.Second))
				ok := true
				if _, err := c.Write(req); err != nil {
					ok = false
				}
				for k := 0; k < depth && ok; k++ {
					status, closed, err := readResponse(br)
					switch {
					case err != nil || status != 200:
						errs++
						ok = false
					default:
						n++
						if closed {
							ok = false
						}
					}
				}
				if !ok || spec.close {
					c.Close()
					c = nil
				}
			}
			if c != nil {
				c.Close()
			}
			mu.Lock()
			total.responses += n
			total.errors += errs
			mu.Unlock()
		}()
	}
	wg.Wait()
	total.elapsed = time.Since(start)
	return total
}

// readResponse reads one response and discards its body; closed reports
// that the server will close the connection after it.
func readResponse(br *bufio.Reader) (status int, closed bool, err error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, false, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, false, fmt.Errorf("bad status line %q", line)
	}
	status, _ = strconv.Atoi(string(line[9:12]))
	length, chunked := int64(-1), false
	for {
		line, err = br.ReadSlice('\n')
		if err != nil {
			return 0, false, err
		}
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			break
		}
		k, v, _ := bytes.Cut(line, []byte(":"))
		v = bytes.TrimSpace(v)
		switch strings.ToLower(string(k)) {
		case "content-length":
			length, _ = strconv.ParseInt(string(v), 10, 64)
		case "transfer-encoding":
			chunked = bytes.EqualFold(v, []byte("chunked"))
		case "connection":
			closed = bytes.EqualFold(v, []byte("close"))
		}
	}
	switch {
	case chunked:
		for {
			line, err = br.ReadSlice('\n')
			if err != nil {
				return 0, false, err
			}
			size, _, _ := bytes.Cut(bytes.TrimSpace(line), []byte(";"))
			n, err := strconv.ParseInt(string(size), 16, 64)
			if err != nil {
				return 0, false, err
			}
			if _, err := br.Discard(int(n) + 2); err != nil {
				return 0, false, err
			}
			if n == 0 {
				return status, closed, nil
			}
		}
	case length >= 0:
		_, err = br.Discard(int(length))
	case closed:
		_, err = io.Copy(io.Discard, br)
	}
	return status, closed, err
}

// runIdle opens *idleN keep-alive connections (*tlsIdleN over TLS), makes
// one request on each and leaves them open, then reports how much the server's resident
// memory grew per connection.
func runIdle(wl workload, addr string, pid int) (float64, string) {
	warm := loadSpec{path: "/plaintext", conns: 8, tls: wl.spec.tls}
	n := *idleN
	if wl.spec.tls {
		n = *tlsIdleN
	}
	closedLoop(warm, addr, time.Second)
	time.Sleep(time.Second)
	before := benchutil.RSSKB(pid)
	conns := make([]net.Conn, n)
	var failed int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	next := make(chan int)
	req := []byte("GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				c, err := dial(addr, wl.spec.tls, 10*time.Second)
				if err == nil {
					c.SetDeadline(time.Now().Add(30 * time.Second))
					if _, err = c.Write(req); err == nil {
						var status int
						status, _, err = readResponse(bufio.NewReaderSize(c, 512))
						if err == nil && status != 200 {
							err = errors.New("status " + strconv.Itoa(status))
						}
					}
				}
				if err != nil {
					mu.Lock()
					failed++
					mu.Unlock()
				}
				conns[i] = c
			}
		}()
	}
	for i := range conns {
		next <- i
	}
	close(next)
	wg.Wait()
	time.Sleep(2 * time.Second)
	after := benchutil.RSSKB(pid)
	for _, c := range conns {
		if c != nil {
			tcp := c
			if tc, ok := c.(*tls.Conn); ok {
				tcp = tc.NetConn()
			}
			if tc, ok := tcp.(*net.TCPConn); ok {
				tc.SetLinger(0) // no TIME_WAIT pile-up across rounds
			}
			c.Close()
		}
	}
	note := fmt.Sprintf("RSS %d → %d KB", before, after)
	if failed > 0 {
		note += fmt.Sprintf(", %d connections failed", failed)
	}
	return float64(after-before) / float64(n), note
}

// latencyRate is the fixed request rate of the latency workload.
var latencyRate float64

// upgrade opens a connection to addr and switches it to the target app's
// echo protocol (/upgrade/echo).
func upgrade(addr string) (net.Conn, *bufio.Reader, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, nil, err
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReaderSize(c, 512)
	_, err = io.WriteString(c, "GET /upgrade/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
	if err == nil {
		var status int
		if status, _, err = readResponse(br); err == nil && status != 101 {
			err = errors.New("status " + strconv.Itoa(status))
		}
	}
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return c, br, nil
}

// runUpgradedIdle opens *upgradedN upgraded (hijacked) connections, each
// echoing one message, leaves them open, and reports how much the
// server's resident memory grew per connection.
func runUpgradedIdle(_ workload, addr string, pid int) (float64, string) {
	closedLoop(loadSpec{path: "/plaintext", conns: 8}, addr, time.Second)
	time.Sleep(time.Second)
	before := benchutil.RSSKB(pid)
	conns := make([]net.Conn, 0, *upgradedN)
	failed := 0
	msg := []byte("ping\n")
	for i := 0; i < *upgradedN; i++ {
		c, br, err := upgrade(addr)
		if err == nil {
			if _, err = c.Write(msg); err == nil {
				_, err = io.ReadFull(br, make([]byte, len(msg)))
			}
		}
		if err != nil {
			failed++
			continue
		}
		conns = append(conns, c)
	}
	time.Sleep(2 * time.Second)
	after := benchutil.RSSKB(pid)
	for _, c := range conns {
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
	}
	note := fmt.Sprintf("RSS %d → %d KB", before, after)
	if failed > 0 {
		note += fmt.Sprintf(", %d connections failed", failed)
	}
	return float64(after-before) / float64(max(1, len(conns))), note
}

// runUpgradedEcho echoes 64-byte messages over 64 upgraded connections,
// each sending its next message once the last came back, and reports
// round trips per second with the median round trip.
func runUpgradedEcho(_ workload, addr string, _ int) (float64, string) {
	const conns = 64
	msg := bytes.Repeat([]byte("e"), 64)
	var mu sync.Mutex
	var all []time.Duration
	var errs atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(*duration)
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, br, err := upgrade(addr)
			if err != nil {
				errs.Add(1)
				return
			}
			defer c.Close()
			c.SetDeadline(deadline.Add(10 * time.Second))
			got := make([]byte, len(msg))
			var lat []time.Duration
			for time.Now().Before(deadline) {
				t0 := time.Now()
				if _, err := c.Write(msg); err != nil {
					errs.Add(1)
					return
				}
				if _, err := io.ReadFull(br, got); err != nil {
					errs.Add(1)
					return
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if len(all) == 0 {
		return 0, "no round trips"
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	note := fmt.Sprintf("p50 %.3f ms, p99 %.3f ms", float64(all[len(all)/2])/1e6, float64(all[len(all)*99/100])/1e6)
	if n := errs.Load(); n > 0 {
		note += fmt.Sprintf(", %d errors", n)
	}
	return float64(len(all)) / elapsed.Seconds(), note
}
