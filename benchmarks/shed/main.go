// Command shed measures load shedding: it sends requests to a server at a
// fixed rate (open loop: each request is sent when it is due, whether or
// not earlier ones were answered) and reports how many were served and how
// fast, and how many were shed (503). With a rate above the server's
// capacity, a server that queues without bound serves everything ever
// later; one that sheds answers the excess at once and keeps the served
// requests' latency near the handler's own.
//
//	go run ./benchmarks/shed -addr 127.0.0.1:18090 -path /delay/20 -rate 800 -duration 10s
//
// Latency is from when a request was due to when its response was read,
// so a server that falls behind is charged for the wait. Requests due in
// the first -warmup are sent but not counted.
package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18090", "the server")
	path := flag.String("path", "/delay/20", "the request's target")
	rate := flag.Int("rate", 800, "requests per second")
	duration := flag.Duration("duration", 10*time.Second, "how long to send, warm-up included")
	warmup := flag.Duration("warmup", 2*time.Second, "the first part of the run, not counted")
	timeout := flag.Duration("timeout", 30*time.Second, "how long a request may take before it counts as failed")
	flag.Parse()

	client := &http.Client{Timeout: *timeout, Transport: &http.Transport{MaxIdleConnsPerHost: 4096}}
	type result struct {
		status int
		lat    time.Duration
	}
	var mu sync.Mutex
	var results []result
	var wg sync.WaitGroup
	start := time.Now()
	interval := time.Second / time.Duration(*rate)
	n := int(*duration / interval)
	for i := range n {
		due := start.Add(time.Duration(i) * interval)
		time.Sleep(time.Until(due))
		counted := due.Sub(start) >= *warmup
		wg.Go(func() {
			status := 0
			if resp, err := client.Get("http://" + *addr + *path); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				status = resp.StatusCode
			}
			if counted {
				mu.Lock()
				results = append(results, result{status, time.Since(due)})
				mu.Unlock()
			}
		})
	}
	wg.Wait()

	var served, all []time.Duration
	shed, failed := 0, 0
	for _, r := range results {
		all = append(all, r.lat)
		switch {
		case r.status == 200:
			served = append(served, r.lat)
		case r.status == 503:
			shed++
		default:
			failed++
		}
	}
	if len(results) == 0 {
		fmt.Fprintln(os.Stderr, "shed: no request counted")
		os.Exit(1)
	}
	pct := func(d []time.Duration, p float64) time.Duration {
		if len(d) == 0 {
			return 0
		}
		slices.Sort(d)
		return d[min(len(d)-1, int(float64(len(d))*p))]
	}
	fmt.Printf("counted %d: served %d (p50 %v, p99 %v), shed %d (%.1f %%), failed %d; p99 of every answer %v\n",
		len(results), len(served), pct(served, 0.50).Round(time.Millisecond), pct(served, 0.99).Round(time.Millisecond),
		shed, 100*float64(shed)/float64(len(results)), failed, pct(all, 0.99).Round(time.Millisecond))
}
