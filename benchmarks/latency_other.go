//go:build !linux

package main

// runLatency needs Linux: its generator is one thread with epoll and a
// timerfd (see latency_linux.go).
func runLatency(_ workload, _ string, _ int) (float64, string) {
	return 0, "the fixed-rate generator needs Linux (epoll, timerfd)"
}
