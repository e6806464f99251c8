// Command soak runs waitron under mixed hostile and ordinary load for a
// while and samples its resident memory, goroutines and open descriptors,
// to show they stay flat:
//
//	go run ./benchmarks/soak -duration 10m
//
// Load (all on 127.0.0.1, every loop bounded by the duration): keep-alive
// clients, pipelining clients, slowloris heads, clients that reset
// mid-request, 1 MiB uploads that spill to disk, readers that stall on a
// large response; and on a TLS listener beside it, keep-alive clients, a
// handshake per request, HTTP/2 clients (over TLS, and h2c on the plain
// listener) and clients that never finish their handshake. It prints a Markdown table of the samples and exits 1
// if the last minute's figures are well above the first minute's.
package main

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/waitron/waitron/internal/benchutil"
	"github.com/waitron/waitron/internal/certgen"
)

var (
	duration = flag.Duration("duration", 10*time.Minute, "how long to run the load")
	every    = flag.Duration("every", 5*time.Second, "sampling interval")
	logPath  = flag.String("log", "", "write the server's log to this file (default: discard)")
)

type sample struct {
	at                         time.Duration
	rssKB, goroutines, fds     int64
	requests, errors, tmpFiles int64
}

func main() {
	flag.Parse()
	bin, err := os.MkdirTemp("", "waitron-soak-")
	check(err)
	defer os.RemoveAll(bin)
	tmp := filepath.Join(bin, "tmp")
	check(os.Mkdir(tmp, 0o700))
	out, err := exec.Command("go", "build", "-o", filepath.Join(bin, "waitron"), "./cmd/waitron").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.Exit(1)
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	l, _ = net.Listen("tcp", "127.0.0.1:0")
	tlsAddr := l.Addr().String()
	l.Close()
	certs, err := certgen.Generate(bin)
	check(err)
	srv := exec.Command(filepath.Join(bin, "waitron"), "--listen", addr, "--threads", "8", "--connection-limit", "500",
		"--tls-listen", tlsAddr, "--certfile", certs.CertFile, "--keyfile", certs.KeyFile, "--tls-handshake-timeout", "3",
		"--inbuf-overflow", "262144", "--outbuf-overflow", "262144", "--outbuf-high-watermark", "2097152",
		"--request-header-timeout", "5", "--request-body-timeout", "5", "--send-timeout", "5", "--channel-timeout", "10",
		"--cleanup-interval", "2")
	srv.Env = append(os.Environ(), "TMPDIR="+tmp)
	srv.Stderr = io.Discard
	if *logPath != "" {
		f, err := os.Create(*logPath)
		check(err)
		defer f.Close()
		srv.Stderr = f
	}
	check(srv.Start())
	defer func() {
		srv.Process.Signal(os.Interrupt)
		srv.Wait()
	}()
	check(benchutil.WaitListening(addr))

	var requests, errors atomic.Int64
	var errMu sync.Mutex
	errKinds := map[string]int{}
	fail := func(kind string, err error) {
		errors.Add(1)
		errMu.Lock()
		msg := kind
		if err != nil {
			msg += ": " + err.Error()
			if i := strings.LastIndex(msg, ": "); i > 0 && strings.Contains(msg, "127.0.0.1") {
				msg = kind + ": " + msg[i+2:]
			}
		}
		errKinds[msg]++
		errMu.Unlock()
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	spawn := func(n int, f func()) {
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					f()
				}
			}()
		}
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	spawn(16, func() { // keep-alive
		for _, p := range []string{"/plaintext", "/json", "/request?x=1"} {
			resp, err := client.Get("http://" + addr + p)
			if err != nil {
				fail("keep-alive", err)
				time.Sleep(10 * time.Millisecond)
				continue
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			requests.Add(1)
		}
	})
	spawn(4, func() { // pipelined, 16 deep
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			fail("pipelined dial", err)
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, strings.Repeat("GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n", 15)+"GET /plaintext HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
		br := bufio.NewReader(c)
		for i := 0; i < 16; i++ {
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				fail("pipelined", err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			requests.Add(1)
		}
	})
	spawn(20, func() { // slowloris heads: cut off by request_header_timeout
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return
		}
		defer c.Close()
		for i := 0; i < 200; i++ {
			if _, err := c.Write([]byte{'G'}); err != nil {
				return
			}
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
	spawn(4, func() { // resets mid-request
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return
		}
		io.WriteString(c, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n"+strings.Repeat("r", 50000))
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
		time.Sleep(20 * time.Millisecond)
	})
	body := strings.Repeat("u", 1<<20)
	spawn(4, func() { // 1 MiB uploads, spooled to disk
		resp, err := client.Post("http://"+addr+"/echo", "text/plain", strings.NewReader(body))
		if err != nil {
			fail("upload", err)
			return
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if n != int64(len(body)) {
			fail("upload echo length "+resp.Status, nil)
		}
		requests.Add(1)
	})
	h1TLS := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64,
		TLSClientConfig: certs.ClientConfig(), TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}}
	h2 := new(http.Protocols)
	h2.SetHTTP2(true)
	h2.SetUnencryptedHTTP2(true)
	h2Client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: certs.ClientConfig(), Protocols: h2}}
	get := func(kind string, c *http.Client, url string) {
		resp, err := c.Get(url)
		if err != nil {
			fail(kind, err)
			time.Sleep(10 * time.Millisecond)
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		requests.Add(1)
	}
	spawn(4, func() { get("tls keep-alive", h1TLS, "https://"+tlsAddr+"/plaintext") })
	spawn(2, func() { // a handshake per request
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
			TLSClientConfig: certs.ClientConfig(), TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}}
		get("tls handshake", c, "https://"+tlsAddr+"/json")
	})
	spawn(8, func() { get("h2", h2Client, "https://"+tlsAddr+"/request?x=2") })
	spawn(4, func() { get("h2c", h2Client, "http://"+addr+"/plaintext") })
	spawn(4, func() { // stalled handshakes: cut off by tls_handshake_timeout
		c, err := net.DialTimeout("tcp", tlsAddr, 5*time.Second)
		if err != nil {
			return
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		c.Read(make([]byte, 1))
	})
	spawn(2, func() { // stalled readers of a 50 MB response: cut off by send_timeout
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return
		}
		defer c.Close()
		io.WriteString(c, "GET /bytes/50000000 HTTP/1.1\r\nHost: a\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		io.ReadFull(c, make([]byte, 4096))
		select { // stop reading: send_timeout (5 s) must free the worker
		case <-stop:
		case <-time.After(8 * time.Second):
		}
	})

	var samples []sample
	start := time.Now()
	tick := time.NewTicker(*every)
	for time.Since(start) < *duration {
		<-tick.C
		samples = append(samples, take(srv.Process.Pid, addr, tmp, time.Since(start), requests.Load(), errors.Load()))
	}
	tick.Stop()
	close(stop)
	wg.Wait()
	time.Sleep(12 * time.Second) // idle: timeouts and sweeps run
	samples = append(samples, take(srv.Process.Pid, addr, tmp, time.Since(start), requests.Load(), errors.Load()))

	fmt.Printf("| t | RSS (MiB) | goroutines | open fds | spool files | requests | client errors |\n|---|---|---|---|---|---|---|\n")
	for _, s := range samples {
		fmt.Printf("| %s | %.1f | %d | %d | %d | %d | %d |\n", s.at.Round(time.Second), float64(s.rssKB)/1024, s.goroutines, s.fds, s.tmpFiles, s.requests, s.errors)
	}
	first, last := window(samples, 0, time.Minute), window(samples, *duration-time.Minute, *duration)
	fmt.Printf("\nfirst minute: RSS %.1f MiB, %d goroutines, %d fds; last minute: RSS %.1f MiB, %d goroutines, %d fds; after the load: %d goroutines, %d fds, %d spool files\n",
		float64(first.rssKB)/1024, first.goroutines, first.fds, float64(last.rssKB)/1024, last.goroutines, last.fds,
		samples[len(samples)-1].goroutines, samples[len(samples)-1].fds, samples[len(samples)-1].tmpFiles)
	for k, n := range errKinds {
		fmt.Printf("client error: %d × %s\n", n, k)
	}
	if last.rssKB > first.rssKB*3/2+16*1024 || last.goroutines > first.goroutines*3/2+50 || last.fds > first.fds*3/2+50 {
		fmt.Println("NOT FLAT")
		os.Exit(1)
	}
}

// window returns the largest figures sampled between from and to.
func window(ss []sample, from, to time.Duration) sample {
	var m sample
	for _, s := range ss {
		if s.at >= from && s.at <= to {
			m.rssKB, m.goroutines, m.fds = max(m.rssKB, s.rssKB), max(m.goroutines, s.goroutines), max(m.fds, s.fds)
		}
	}
	return m
}

func take(pid int, addr, tmp string, at time.Duration, requests, errors int64) sample {
	s := sample{at: at, requests: requests, errors: errors}
	s.rssKB = benchutil.RSSKB(pid)
	// Spool files are unlinked when created (and a few are kept open for
	// reuse): count the names left in tmp and the server's descriptors
	// on files made there.
	fdDir := fmt.Sprintf("/proc/%d/fd", pid)
	if ents, err := os.ReadDir(fdDir); err == nil {
		s.fds = int64(len(ents))
		for _, e := range ents {
			if target, err := os.Readlink(filepath.Join(fdDir, e.Name())); err == nil && strings.HasPrefix(target, tmp+"/") {
				s.tmpFiles++
			}
		}
	}
	if ents, err := os.ReadDir(tmp); err == nil {
		s.tmpFiles += int64(len(ents))
	}
	c := &http.Client{Timeout: 5 * time.Second}
	if resp, err := c.Get("http://" + addr + "/runtime"); err == nil {
		var m map[string]int64
		json.NewDecoder(resp.Body).Decode(&m)
		resp.Body.Close()
		s.goroutines = m["goroutines"]
	}
	return s
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
