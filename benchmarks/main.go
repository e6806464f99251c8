// Command benchmarks measures waitron against net/http and fasthttp serving
// the same target app, in the same run, on this machine: each workload runs
// against each server in turn (A B C A B C …) and the medians and ratios
// to net/http are printed as a Markdown table.
//
//	go run ./benchmarks -rounds 3 -duration 10s
//
// Load comes from wrk (Debian package wrk). Every server listens on
// 127.0.0.1 and is stopped at the end of its turn.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

type server struct {
	name string
	cmd  func(bin, addr string) *exec.Cmd
}

var servers = []server{
	{"waitron", func(bin, addr string) *exec.Cmd {
		return exec.Command(filepath.Join(bin, "waitron"), "--listen", addr, "--threads", strconv.Itoa(*threads))
	}},
	{"net/http", func(bin, addr string) *exec.Cmd {
		return exec.Command(filepath.Join(bin, "peer"), "-kind", "nethttp", "-addr", addr)
	}},
	{"fasthttp", func(bin, addr string) *exec.Cmd {
		return exec.Command(filepath.Join(bin, "peer"), "-kind", "fasthttp", "-addr", addr)
	}},
}

var (
	rounds   = flag.Int("rounds", 3, "rounds per workload and server")
	duration = flag.Duration("duration", 10*time.Second, "wrk duration per run")
	conns    = flag.Int("c", 64, "wrk connections")
	wrkT     = flag.Int("t", 1, "wrk threads")
	threads  = flag.Int("threads", 4, "waitron --threads")
	path     = flag.String("path", "/plaintext", "path to request")
)

func main() {
	flag.Parse()
	if _, err := exec.LookPath("wrk"); err != nil {
		fmt.Fprintln(os.Stderr, "wrk is required: apt-get install wrk")
		os.Exit(1)
	}
	bin, err := os.MkdirTemp("", "waitron-bench-")
	check(err)
	defer os.RemoveAll(bin)
	for name, pkg := range map[string]string{"waitron": "./cmd/waitron", "peer": "./benchmarks/peer"} {
		out, err := exec.Command("go", "build", "-o", filepath.Join(bin, name), pkg).CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "go build %s: %v\n%s", pkg, err, out)
			os.Exit(1)
		}
	}
	results := map[string][]float64{}
	for r := 0; r < *rounds; r++ {
		for _, s := range servers {
			rps := measure(bin, s)
			fmt.Fprintf(os.Stderr, "round %d %-9s %10.0f req/s\n", r+1, s.name, rps)
			results[s.name] = append(results[s.name], rps)
		}
	}
	base := median(results["net/http"])
	fmt.Printf("| server | req/s (median of %d) | runs | ratio to net/http |\n|---|---|---|---|\n", *rounds)
	for _, s := range servers {
		m := median(results[s.name])
		var runs []string
		for _, v := range results[s.name] {
			runs = append(runs, fmt.Sprintf("%.0f", v))
		}
		fmt.Printf("| %s | %.0f | %s | %.2f× |\n", s.name, m, strings.Join(runs, ", "), m/base)
	}
	fmt.Printf("\nwrk -t%d -c%d -d%s http://127.0.0.1:PORT%s; waitron --threads %d; %s, GOMAXPROCS=%d\n",
		*wrkT, *conns, *duration, *path, *threads, runtime.Version(), runtime.GOMAXPROCS(0))
}

var rpsRE = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)

func measure(bin string, s server) float64 {
	addr := freeAddr()
	cmd := s.cmd(bin, addr)
	check(cmd.Start())
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}()
	waitListening(addr)
	ctx, cancel := context.WithTimeout(context.Background(), *duration+30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "wrk", "-t", strconv.Itoa(*wrkT), "-c", strconv.Itoa(*conns),
		"-d", duration.String(), "http://"+addr+*path).CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "wrk against %s: %v\n%s", s.name, err, out)
		os.Exit(1)
	}
	if strings.Contains(string(out), "Non-2xx") || strings.Contains(string(out), "Socket errors") {
		fmt.Fprintf(os.Stderr, "warning: %s:\n%s", s.name, out)
	}
	m := rpsRE.FindSubmatch(out)
	if m == nil {
		fmt.Fprintf(os.Stderr, "no Requests/sec in wrk output:\n%s", out)
		os.Exit(1)
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	defer l.Close()
	return l.Addr().String()
}

func waitListening(addr string) {
	for i := 0; i < 200; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	fmt.Fprintf(os.Stderr, "nothing listening on %s after 5 s\n", addr)
	os.Exit(1)
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
