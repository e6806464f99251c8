// Command benchmarks measures waitron against net/http and fasthttp serving
// the same target app, and a raw gnet server with fixed answers as the
// ceiling, in the same run on this machine. Each workload runs against each
// server in turn (A B C D A B C D …, -rounds times); the medians and their
// ratios to net/http and fasthttp go into docs/benchmarks.md (between its
// generated-results markers) with a chart, docs/benchmarks.svg.
//
//	go run ./benchmarks                         # everything, 3 rounds of 10 s
//	go run ./benchmarks -only plaintext,pipelined -rounds 5
//	go run ./benchmarks -profile /tmp/prof      # CPU profile of waitron per workload
//	go run ./benchmarks -pin=false              # servers and load share every CPU
//
// By default each server runs pinned to one CPU (-server-cpu) and the load
// generator to another (-load-cpu), so that a figure is the server's, not
// the load generator's; beside req/s it reports the server's CPU time per
// request and how busy its core was.
//
// Load comes from wrk (Debian package wrk) when it is installed, otherwise
// from the Go load generator in load.go; idle memory always uses the Go
// generator, and latency at a fixed rate an open-loop generator of its own
// (one thread, epoll and a timerfd: latency_linux.go). Every server listens
// on 127.0.0.1 and is stopped at the end of its turn.
package main

import (
	"bytes"
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
	"sync"
	"time"

	"github.com/waitron/waitron/internal/benchutil"
	"github.com/waitron/waitron/internal/certgen"
)

var (
	rounds    = flag.Int("rounds", 3, "rounds per workload and server")
	duration  = flag.Duration("duration", 10*time.Second, "length of each measured run")
	threads   = flag.Int("threads", 4, "waitron --threads (waitress's default is 4)")
	only      = flag.String("only", "", "comma-separated workloads to run (default: all)")
	useWrk    = flag.Bool("wrk", true, "use wrk when it is installed")
	profile   = flag.String("profile", "", "directory for a CPU profile of waitron in each workload (WAITRON_CPUPROFILE)")
	write     = flag.String("write", "docs/benchmarks.md", "file whose generated section receives the results (empty: print only)")
	idleN     = flag.Int("idle", 10000, "connections for the idle-memory workload")
	upgradedN = flag.Int("upgraded", 2000, "connections for the idle upgraded-connection workload")
	replot    = flag.Bool("replot", false, "only redraw the chart from the results already in -write")
	pin       = flag.Bool("pin", true, "run each server on -server-cpu and the load generator on -load-cpu (taskset); -pin=false shares every CPU, as the old figures did")
	srvCPU    = flag.Int("server-cpu", 0, "the CPU the server runs on, with -pin")
	loadCPU   = flag.Int("load-cpu", 1, "the CPU the load generator (and this command) runs on, with -pin")
	warmup    = flag.Duration("warmup", 2*time.Second, "load before each measured run, not counted")
	tlsIdleN  = flag.Int("tls-idle", 2000, "connections for the idle-memory workload over TLS")
)

// server is one server under test.
type server struct {
	name string
	args func(bin, addr string) []string
}

func waitron(extra ...string) func(bin, addr string) []string {
	return func(bin, addr string) []string {
		// connection_limit is raised so that the 10,000 idle connections
		// and 256 slow clients are served, not parked (waitress's default
		// is 100); everything else is waitron's default.
		return append([]string{filepath.Join(bin, "waitron"), "--listen", addr, "--threads", strconv.Itoa(*threads),
			"--connection-limit", "20000"}, extra...)
	}
}

func peer(kind string) func(bin, addr string) []string {
	return func(bin, addr string) []string {
		return []string{filepath.Join(bin, "peer"), "-kind", kind, "-addr", addr}
	}
}

// waitronTLS is waitron serving HTTPS only, on addr, with the run's
// certificate.
func waitronTLS(extra ...string) func(bin, addr string) []string {
	return func(bin, addr string) []string {
		c := runCerts()
		return append([]string{filepath.Join(bin, "waitron"), "--tls-listen", addr, "--certfile", c.CertFile,
			"--keyfile", c.KeyFile, "--threads", strconv.Itoa(*threads), "--connection-limit", "20000"}, extra...)
	}
}

// peerTLS is a peer serving HTTPS with the run's certificate.
func peerTLS(kind string) func(bin, addr string) []string {
	return func(bin, addr string) []string {
		c := runCerts()
		return append(peer(kind)(bin, addr), "-cert", c.CertFile, "-key", c.KeyFile)
	}
}

// runCerts returns the certificate the TLS workloads' servers share,
// made at the first call in a directory removed when the command ends.
var runCerts = sync.OnceValue(func() *certgen.Set {
	dir, err := os.MkdirTemp("", "waitron-bench-certs-")
	check(err)
	cleanups = append(cleanups, func() { os.RemoveAll(dir) })
	s, err := certgen.Generate(dir)
	check(err)
	return s
})

// cleanups run when main returns.
var cleanups []func()

var (
	srvWaitron  = server{"waitron", waitron()}
	srvNetHTTP  = server{"net/http", peer("nethttp")}
	srvFastHTTP = server{"fasthttp", peer("fasthttp")}
	srvRaw      = server{"raw gnet (ceiling)", peer("raw")}
	// The access log's cost: the same server writing the combined format
	// to /dev/null (formatted and written by its goroutine, as to a file).
	srvWaitronLog = server{"waitron --access-log", waitron("--access-log", "/dev/null")}
	srvWaitron6   = server{"waitron threads=64", func(bin, addr string) []string {
		return append(waitron()(bin, addr), "--threads", "64")
	}}
	// The idle workload measures what a connection costs. The command's
	// collector floor (--gc-floor) lets garbage fill a fixed 16 MiB of heap
	// during the warm-up, and connections then fill that room instead of
	// growing RSS, or grow it by the garbage the floor keeps: the figure
	// shows the floor as well as the connections. Both are measured: with
	// --gc-floor 0 (the connections' own cost) and with the defaults
	// (what a user sees).
	srvWaitronNoFloor = server{"waitron --gc-floor 0", waitron("--gc-floor", "0")}
	// fasthttp's API on waitron's engine: the target app written for
	// fasthttp (--app target-fasthttp), through the fasthttp adapter.
	srvWaitronFast        = server{"waitron, fasthttp adapter", waitron("--app", "target-fasthttp")}
	srvWaitronFastNoFloor = server{"waitron, fasthttp adapter, --gc-floor 0", waitron("--app", "target-fasthttp", "--gc-floor", "0")}
	standard              = []server{srvWaitron, srvNetHTTP, srvFastHTTP, srvRaw}
	// The same servers over TLS (HTTP/1.1), one certificate (ECDSA P-256).
	tlsServers = []server{{"waitron", waitronTLS()}, {"waitron, fasthttp adapter", waitronTLS("--app", "target-fasthttp")},
		{"net/http", peerTLS("nethttp")}, {"fasthttp", peerTLS("fasthttp")}}
	tlsIdleServers = []server{{"waitron --gc-floor 0", waitronTLS("--gc-floor", "0")}, {"waitron", waitronTLS()},
		{"net/http", peerTLS("nethttp")}, {"fasthttp", peerTLS("fasthttp")}}
	// withFast is standard with the fasthttp adapter beside waitron.
	withFast = []server{srvWaitron, srvWaitronFast, srvNetHTTP, srvFastHTTP, srvRaw}
)

// workload is one kind of load.
type workload struct {
	name, title string
	group       string // the results table it is in
	unit        string // what the figure counts; higher is better unless lowerBetter
	lowerBetter bool
	servers     []server
	spec        loadSpec
	run         func(w workload, addr string, pid int) (float64, string) // nil: closed-loop load
}

// The results' tables, in order.
const (
	groupKeepAlive = "Keep-alive and pipelined requests (target app)"
	groupConns     = "New connections, bodies and blocking handlers (target app)"
	groupMemory    = "Memory per connection, and upgraded connections"
	groupLatency   = "Latency at a fixed rate"
	groupTLS       = "TLS and HTTP/2 (crypto/tls on every server)"
	groupArena     = "HttpArena's HTTP/1.1 profiles (arena app)"
)

// allWorkloads is every workload, in the order they run and are reported.
func allWorkloads() []workload {
	return append(append(workloads(), tlsWorkloads()...), arenaWorkloads()...)
}

// tlsWorkloads are the TLS ones: keep-alive, a handshake per request, and
// memory per idle connection. They need wrk (the closed-loop generator
// speaks TLS only for the idle workload).
func tlsWorkloads() []workload {
	return []workload{
		{name: "tls-plaintext", group: groupTLS, title: "keep-alive plaintext over TLS, 64 connections", unit: "req/s",
			servers: tlsServers, spec: loadSpec{path: "/plaintext", conns: 64, tls: true}},
		{name: "tls-handshake", group: groupTLS, title: "a new TLS connection (full handshake) per request, 16 at a time", unit: "req/s",
			servers: tlsServers, spec: loadSpec{path: "/plaintext", conns: 16, close: true, tls: true}},
		{name: "h2c-plaintext", group: groupTLS, title: "HTTP/2 in the clear (h2c), 16 connections × 32 streams", unit: "req/s",
			servers: []server{{"waitron", waitron()}, {"net/http", func(bin, addr string) []string { return append(peer("nethttp")(bin, addr), "-h2c") }}},
			spec:    loadSpec{path: "/plaintext", conns: 16, streams: 32}},
		{name: "h2-plaintext", group: groupTLS, title: "HTTP/2 over TLS (h2), 16 connections × 32 streams", unit: "req/s",
			servers: []server{{"waitron", waitronTLS()}, {"net/http", peerTLS("nethttp")}},
			spec:    loadSpec{path: "/plaintext", conns: 16, streams: 32, tls: true}},
		{name: "tls-idle", group: groupTLS, title: fmt.Sprintf("%d idle keep-alive TLS connections", *tlsIdleN), unit: "KB per connection",
			lowerBetter: true, servers: tlsIdleServers, spec: loadSpec{tls: true}, run: runIdle},
	}
}

func workloads() []workload {
	return []workload{
		{name: "plaintext", group: groupKeepAlive, title: "keep-alive plaintext, 64 connections", unit: "req/s", servers: append(withFast[:2:2], append([]server{srvWaitronLog}, withFast[2:]...)...),
			spec: loadSpec{path: "/plaintext", conns: 64}},
		{name: "json", group: groupKeepAlive, title: "keep-alive JSON, 64 connections", unit: "req/s", servers: withFast,
			spec: loadSpec{path: "/json", conns: 64}},
		{name: "pipelined", group: groupKeepAlive, title: "pipelined ×16, 64 connections", unit: "req/s", servers: withFast,
			spec: loadSpec{path: "/plaintext", conns: 64, pipeline: 16}},
		{name: "newconn", group: groupConns, title: "new connection per request, 64 at a time", unit: "req/s", servers: standard,
			spec: loadSpec{path: "/plaintext", conns: 64, close: true}},
		{name: "upload", group: groupConns, title: "1 MiB POST echoed back, 16 connections", unit: "req/s", servers: withFast,
			spec: loadSpec{path: "/echo", conns: 16, body: 1 << 20}},
		{name: "slow", group: groupConns, title: "handler sleeping 10 ms, 256 connections", unit: "req/s",
			servers: []server{srvWaitron, srvWaitron6, srvNetHTTP, srvFastHTTP},
			spec:    loadSpec{path: "/delay/10", conns: 256}},
		{name: "idle", group: groupMemory, title: fmt.Sprintf("%d idle keep-alive connections", *idleN), unit: "KB per connection",
			lowerBetter: true, servers: []server{srvWaitronNoFloor, srvWaitronFastNoFloor, srvWaitron, srvWaitronFast, srvNetHTTP, srvFastHTTP, srvRaw}, run: runIdle},
		{name: "upgraded-idle", group: groupMemory, title: fmt.Sprintf("%d idle upgraded (hijacked) connections", *upgradedN), unit: "KB per connection",
			lowerBetter: true, servers: []server{srvWaitronNoFloor, srvNetHTTP, srvFastHTTP}, run: runUpgradedIdle},
		{name: "upgraded-echo", group: groupMemory, title: "64-byte echo over 64 upgraded (hijacked) connections", unit: "round trips/s",
			servers: []server{srvWaitron, srvNetHTTP, srvFastHTTP}, run: runUpgradedEcho},
		{name: "latency", group: groupLatency, title: "p99 latency at half net/http's keep-alive peak, 64 connections", unit: "ms p99",
			lowerBetter: true, servers: standard, run: runLatency},
	}
}

// result is the figures of one workload against one server.
type result struct {
	values []float64
	cpu    []float64 // the server's CPU µs per request, where counted
	user   []float64 // the user-space part of it
	busy   []float64 // the server's CPU time over the run's wall time
	load   []float64 // the load generator's CPU's busy share over the run (pinned only)
	notes  []string
}

func (r *result) add(sm sample) {
	r.values = append(r.values, sm.value)
	if sm.cpuPerReq > 0 {
		r.cpu = append(r.cpu, sm.cpuPerReq)
		r.user = append(r.user, sm.userPerReq)
		r.busy = append(r.busy, sm.busy)
	}
	if sm.loadBusy > 0 {
		r.load = append(r.load, sm.loadBusy)
	}
	if sm.note != "" {
		r.notes = append(r.notes, sm.note)
	}
}

// sample is one measured run.
type sample struct {
	value      float64
	note       string
	cpuPerReq  float64 // µs of the server's CPU time per request (0: not counted)
	userPerReq float64 // the user-space part of it (the rest is the kernel's, system calls above all)
	busy       float64 // the server's CPU time ÷ the run's wall time
	loadBusy   float64 // the share of the load generator's CPU that was busy (0: not measured)
}

func (sm sample) describe() string {
	if sm.cpuPerReq == 0 {
		return sm.note
	}
	load := ""
	if sm.loadBusy > 0 {
		load = fmt.Sprintf(", load core %.0f%%", 100*sm.loadBusy)
	}
	return strings.TrimSpace(fmt.Sprintf("%.2f µs CPU/req (%.2f user), core %.0f%% busy%s %s", sm.cpuPerReq, sm.userPerReq, 100*sm.busy, load, sm.note))
}

func main() {
	flag.Parse()
	defer func() {
		for _, f := range cleanups {
			f()
		}
	}()
	if *replot {
		ran, all, err := readResults(*write)
		check(err)
		check(os.WriteFile(strings.TrimSuffix(*write, ".md")+".svg", chart(ran, all), 0o644))
		return
	}
	if *pin {
		pinSelf() // re-executes this command on -load-cpu; returns once it runs there
	}
	wrkPath := ""
	if p, err := exec.LookPath("wrk"); err == nil && *useWrk {
		wrkPath = p
	}
	bin, err := os.MkdirTemp("", "waitron-bench-")
	check(err)
	defer os.RemoveAll(bin)
	defer func() {
		if arenaData != "" {
			os.RemoveAll(arenaData)
		}
	}()
	for name, pkg := range map[string]string{"waitron": "./cmd/waitron", "peer": "./benchmarks/peer"} {
		out, err := exec.Command("go", "build", "-o", filepath.Join(bin, name), pkg).CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "go build %s: %v\n%s", pkg, err, out)
			os.Exit(1)
		}
	}
	if *profile != "" {
		check(os.MkdirAll(*profile, 0o755))
	}
	want := map[string]bool{}
	for _, n := range strings.Split(*only, ",") {
		if n != "" {
			want[n] = true
		}
	}
	var ran []workload
	all := map[string]map[string]*result{}
	for _, w := range allWorkloads() {
		if len(want) > 0 && !want[w.name] && !(want["arena"] && strings.HasPrefix(w.name, "arena-")) {
			continue
		}
		if w.name == "latency" {
			// The fixed rate is half net/http's keep-alive peak, measured
			// now if the plaintext workload did not run.
			peak := 0.0
			if r := all["plaintext"]; r != nil {
				peak = median(r["net/http"].values)
			} else {
				for i := 0; i < *rounds; i++ {
					peak = max(peak, measure(bin, wrkPath, workloads()[0], srvNetHTTP, false).value)
				}
			}
			latencyRate = peak / 2
		}
		ran = append(ran, w)
		all[w.name] = map[string]*result{}
		for r := 0; r < *rounds; r++ {
			for _, s := range w.servers {
				res := all[w.name][s.name]
				if res == nil {
					res = &result{}
					all[w.name][s.name] = res
				}
				sm := measure(bin, wrkPath, w, s, *profile != "" && r == 0 && s.name == "waitron")
				fmt.Fprintf(os.Stderr, "%-10s round %d %-20s %12.1f %s %s\n", w.name, r+1, s.name, sm.value, w.unit, sm.describe())
				res.add(sm)
			}
		}
	}
	report := render(ran, all, wrkPath)
	fmt.Print(report)
	if *write != "" {
		check(writeSection(*write, report))
		check(os.WriteFile(strings.TrimSuffix(*write, ".md")+".svg", chart(ran, all), 0o644))
	}
}

// measure starts s, runs w against it once and stops it.
func measure(bin, wrkPath string, w workload, s server, prof bool) sample {
	addr := freeAddr()
	args := s.args(bin, addr)
	if *pin {
		args = append([]string{"taskset", "-c", strconv.Itoa(*srvCPU)}, args...) // taskset execs the server: same PID
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = os.Environ()
	if prof {
		cmd.Env = append(cmd.Env, "WAITRON_CPUPROFILE="+filepath.Join(*profile, "waitron-"+w.name+".pprof"))
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	check(cmd.Start())
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}()
	if err := benchutil.WaitListening(addr); err != nil {
		cmd.Process.Kill()
		cmd.Wait() // the server's output is complete once it has exited
		fmt.Fprintf(os.Stderr, "%s: %v\n%s", s.name, err, stderr.Bytes())
		os.Exit(1)
	}
	pid := cmd.Process.Pid
	if w.run != nil {
		v, note := w.run(w, addr, pid)
		return sample{value: v, note: note}
	}
	if *warmup > 0 {
		load(wrkPath, w.spec, addr, *warmup)
	}
	user0, sys0 := cpuTime(pid)
	lb0, lt0 := cpuStat(*loadCPU)
	t0 := time.Now()
	st := load(wrkPath, w.spec, addr, *duration)
	user1, sys1 := cpuTime(pid)
	lb1, lt1 := cpuStat(*loadCPU)
	user, cpu, wall := user1-user0, user1-user0+sys1-sys0, time.Since(t0)
	sm := sample{value: float64(st.responses) / st.elapsed.Seconds(), note: st.note}
	if st.responses > 0 && cpu > 0 {
		sm.cpuPerReq = float64(cpu.Microseconds()) / float64(st.responses)
		sm.userPerReq = float64(user.Microseconds()) / float64(st.responses)
		sm.busy = cpu.Seconds() / wall.Seconds()
	}
	if *pin && lt1 > lt0 {
		sm.loadBusy = float64(lb1-lb0) / float64(lt1-lt0)
	}
	return sm
}

// loadBound is the load generator's CPU's busy share from which a run's
// figure is taken to be the load generator's limit rather than the
// server's: its core had (almost) no time left to send more.
const loadBound = 0.95

// cpuStat returns the busy and the total clock ticks CPU cpu has counted
// since boot (/proc/stat); 0, 0 if it cannot be read.
func cpuStat(cpu int) (busy, total uint64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	return parseCPUStat(b, cpu)
}

// parseCPUStat reads CPU cpu's line of /proc/stat ("cpuN user nice system
// idle iowait irq softirq steal ..."): idle and iowait are idle time,
// the rest of the first eight fields busy (guest time is already in user).
func parseCPUStat(b []byte, cpu int) (busy, total uint64) {
	prefix := "cpu" + strconv.Itoa(cpu) + " "
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		f := strings.Fields(line)[1:]
		if len(f) < 8 {
			return 0, 0
		}
		for i, v := range f[:8] {
			n, _ := strconv.ParseUint(v, 10, 64)
			total += n
			if i != 3 && i != 4 {
				busy += n
			}
		}
		return busy, total
	}
	return 0, 0
}

// load runs spec against addr for d with wrk, or with the Go generator
// when wrkPath is empty.
func load(wrkPath string, spec loadSpec, addr string, d time.Duration) loadStats {
	if spec.streams > 0 {
		return runH2load(spec, addr, d)
	}
	if wrkPath != "" {
		return runWrk(wrkPath, spec, addr, d)
	}
	if spec.script != "" {
		check(fmt.Errorf("the %s workload needs wrk (Debian package wrk)", spec.path))
	}
	st := closedLoop(spec, addr, d)
	if st.errors > 0 {
		st.note = fmt.Sprintf("%d errors", st.errors)
	}
	return st
}

// cpuTime returns the user and the system CPU time process pid has used,
// all its threads together, from /proc/PID/stat (in clock ticks of 1/100
// s, Linux's USER_HZ).
func cpuTime(pid int) (user, sys time.Duration) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0
	}
	// The command name (field 2) may hold spaces; the fields after its
	// closing parenthesis start at field 3 (state). utime and stime are
	// fields 14 and 15.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0, 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut) * (time.Second / 100), time.Duration(st) * (time.Second / 100)
}

// pinSelf makes this command run on -load-cpu, so that the load generator
// (the Go one in this process, or wrk, which inherits the mask) never
// takes the server's CPU: it re-executes itself under taskset once.
func pinSelf() {
	if *srvCPU == *loadCPU {
		check(fmt.Errorf("-server-cpu and -load-cpu are both %d: pinning needs two CPUs (or -pin=false)", *srvCPU))
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		check(fmt.Errorf("-pin needs taskset (Debian package util-linux), or run with -pin=false: %v", err))
	}
	if os.Getenv("WAITRON_BENCH_PINNED") != "" {
		return
	}
	self, err := os.Executable()
	check(err)
	cmd := exec.Command("taskset", append([]string{"-c", strconv.Itoa(*loadCPU), self}, os.Args[1:]...)...)
	cmd.Env = append(os.Environ(), "WAITRON_BENCH_PINNED=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		os.Exit(ee.ExitCode())
	}
	check(err)
	os.Exit(0)
}

var (
	rpsRE    = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	countRE  = regexp.MustCompile(`([0-9]+) requests in ([0-9.]+)(us|ms|s|m)`)
	non2xxRE = regexp.MustCompile(`Non-2xx or 3xx responses:\s+([0-9]+)`)
)

func scheme(spec loadSpec) string {
	if spec.tls {
		return "https"
	}
	return "http"
}

var h2loadRE = regexp.MustCompile(`requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded`)

// runH2load drives spec over HTTP/2 with h2load (Debian package
// nghttp2-client), one thread.
func runH2load(spec loadSpec, addr string, d time.Duration) loadStats {
	path, err := exec.LookPath("h2load")
	if err != nil {
		check(fmt.Errorf("the HTTP/2 workloads need h2load (Debian package nghttp2-client): %v", err))
	}
	ctx, cancel := context.WithTimeout(context.Background(), d+60*time.Second)
	defer cancel()
	t0 := time.Now()
	out, err := exec.CommandContext(ctx, path, "-t1", "-c", strconv.Itoa(spec.conns), "-m", strconv.Itoa(spec.streams),
		"-D", strconv.Itoa(int(d.Seconds())), scheme(spec)+"://"+addr+spec.path).CombinedOutput()
	elapsed := time.Since(t0)
	m := h2loadRE.FindSubmatch(out)
	if err != nil || m == nil {
		fmt.Fprintf(os.Stderr, "h2load: %v\n%s", err, out)
		os.Exit(1)
	}
	n, _ := strconv.ParseInt(string(m[1]), 10, 64)
	if elapsed > d {
		elapsed = d // h2load's own time: -D, after its connections are up
	}
	st := loadStats{responses: n, elapsed: elapsed}
	if fails := regexp.MustCompile(`(\d+) failed, (\d+) errored`).FindSubmatch(out); fails != nil && (string(fails[1]) != "0" || string(fails[2]) != "0") {
		st.note = fmt.Sprintf("%s failed, %s errored", fails[1], fails[2])
	}
	return st
}

// runWrk drives spec with wrk for d, one thread (the server gets the other
// core).
func runWrk(wrkPath string, spec loadSpec, addr string, d time.Duration) loadStats {
	dir, err := os.MkdirTemp("", "waitron-wrk-")
	check(err)
	defer os.RemoveAll(dir)
	script := filepath.Join(dir, "load.lua")
	check(os.WriteFile(script, []byte(wrkScript(spec)), 0o644))
	ctx, cancel := context.WithTimeout(context.Background(), d+60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, wrkPath, "-t1", "-c", strconv.Itoa(spec.conns), "-d", d.String(),
		"--timeout", "10s", "-s", script, scheme(spec)+"://"+addr+spec.path).CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "wrk: %v\n%s", err, out)
		os.Exit(1)
	}
	m := rpsRE.FindSubmatch(out)
	if m == nil {
		fmt.Fprintf(os.Stderr, "no Requests/sec in wrk output:\n%s", out)
		os.Exit(1)
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	st := loadStats{responses: int64(v * d.Seconds()), elapsed: d}
	if c := countRE.FindSubmatch(out); c != nil {
		n, _ := strconv.ParseInt(string(c[1]), 10, 64)
		t, _ := time.ParseDuration(string(c[2]) + string(c[3]))
		if n > 0 && t > 0 {
			st.responses, st.elapsed = n, t
		}
	}
	if spec.only2xx {
		if m := non2xxRE.FindSubmatch(out); m != nil {
			n, _ := strconv.ParseInt(string(m[1]), 10, 64)
			st.responses -= n
		}
	}
	note := ""
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "Non-2xx") || strings.HasPrefix(line, "Socket errors") {
			note = strings.TrimSpace(note + "; " + line)
		}
	}
	st.note = strings.TrimPrefix(note, "; ")
	return st
}

// wrkScript is the Lua that makes wrk send spec's requests.
func wrkScript(spec loadSpec) string {
	if spec.script != "" {
		return spec.script
	}
	var b strings.Builder
	if spec.body > 0 {
		fmt.Fprintf(&b, "wrk.method = \"POST\"\nwrk.body = string.rep(\"x\", %d)\nwrk.headers[\"Content-Type\"] = \"application/octet-stream\"\n", spec.body)
	}
	if spec.close {
		b.WriteString("wrk.headers[\"Connection\"] = \"close\"\n")
	}
	if spec.pipeline > 1 {
		fmt.Fprintf(&b, "init = function(args)\n  local r = {}\n  for i = 1, %d do r[i] = wrk.format(nil, %q) end\n  req = table.concat(r)\nend\nrequest = function() return req end\n", spec.pipeline, spec.path)
	}
	return b.String()
}

func render(ran []workload, all map[string]map[string]*result, wrkPath string) string {
	var b strings.Builder
	gen := "wrk -t1 (" + wrkVersion(wrkPath) + ")"
	if wrkPath == "" {
		gen = "the Go load generator (benchmarks/load.go)"
	}
	fmt.Fprintf(&b, "Generated by `go run ./benchmarks %s` on %s at commit %s.\n\n", strings.Join(os.Args[1:], " "),
		time.Now().UTC().Format("2006-01-02"), commit())
	placement := "Unpinned (`-pin=false`): the servers and the load generator share every CPU, so a fast server's figure can be the load generator's."
	if *pin {
		placement = fmt.Sprintf("Pinned: each server runs under `taskset -c %d` (so its GOMAXPROCS is 1), the load generator under `taskset -c %d`.", *srvCPU, *loadCPU)
	}
	fmt.Fprintf(&b, "Machine: %s, %d CPUs, Linux %s, %s. %s Load: %s. Medians of %d rounds of %s, each after %s of warm-up; waitron runs with `--threads %d --connection-limit 20000`, otherwise its defaults. A row is marked *load-bound* when the load generator's core was %.0f %% busy or more. How to read the columns: the section above.\n",
		cpuModel(), hostCPUs(), kernel(), runtime.Version(), placement, gen, *rounds, *duration, *warmup, *threads, 100*loadBound)
	group := ""
	for _, w := range ran {
		if w.group != group {
			group = w.group
			fmt.Fprintf(&b, "\n#### %s\n\n", group)
			b.WriteString("| workload | server | median | runs | × net/http | × fasthttp | CPU µs/req | user µs/req | core busy | load core |\n|---|---|---|---|---|---|---|---|---|---|\n")
		}
		rs := all[w.name]
		base, fast := median(rs["net/http"].values), 0.0
		if f := rs["fasthttp"]; f != nil {
			fast = median(f.values)
		}
		for _, s := range w.servers {
			r := rs[s.name]
			m := median(r.values)
			var runs []string
			for _, v := range r.values {
				runs = append(runs, format(v))
			}
			ratio := func(x float64) string {
				if x == 0 || m == 0 {
					return "–"
				}
				if w.lowerBetter {
					return fmt.Sprintf("%.2f×", x/m) // how many times better than x
				}
				return fmt.Sprintf("%.2f×", m/x)
			}
			notes := ""
			if len(r.notes) > 0 {
				notes = " (" + strings.Join(uniq(r.notes), "; ") + ")"
			}
			cpu, user, busy, lc := "–", "–", "–", "–"
			if len(r.cpu) > 0 {
				cpu, busy = fmt.Sprintf("%.2f", median(r.cpu)), fmt.Sprintf("%.0f %%", 100*median(r.busy))
				user = fmt.Sprintf("%.2f", median(r.user))
			}
			if len(r.load) > 0 {
				lb := median(r.load)
				if lc = fmt.Sprintf("%.0f %%", 100*lb); lb >= loadBound {
					lc += " *load-bound*"
				}
			}
			fmt.Fprintf(&b, "| %s | %s | %s %s | %s%s | %s | %s | %s | %s | %s | %s |\n", w.title, s.name, format(m), w.unit,
				strings.Join(runs, ", "), notes, ratio(base), ratio(fast), cpu, user, busy, lc)
		}
	}
	b.WriteString("\nRatios are always \"how many times better than\": for KB per connection and latency, a lower figure gives a higher ratio.\n")
	return b.String()
}

func format(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

func uniq(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// readResults reads back the table of a generated section, for -replot.
func readResults(path string) ([]workload, map[string]map[string]*result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	byTitle := map[string]workload{}
	for _, w := range allWorkloads() {
		byTitle[w.title] = w
	}
	var ran []workload
	all := map[string]map[string]*result{}
	for _, line := range strings.Split(string(b), "\n") {
		cells := strings.Split(line, " | ")
		if len(cells) < 4 {
			continue
		}
		w, ok := byTitle[strings.TrimPrefix(cells[0], "| ")]
		if !ok {
			continue
		}
		if all[w.name] == nil {
			all[w.name] = map[string]*result{}
			ran = append(ran, w)
		}
		r := &result{}
		runs, _, _ := strings.Cut(cells[3], " (")
		for _, v := range strings.Split(runs, ", ") {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: run %q: %v", path, v, err)
			}
			r.values = append(r.values, f)
		}
		all[w.name][cells[1]] = r
	}
	if len(ran) == 0 {
		return nil, nil, fmt.Errorf("%s: no results table", path)
	}
	return ran, all, nil
}

const (
	beginMark = "<!-- results: generated by go run ./benchmarks; do not edit by hand -->"
	endMark   = "<!-- end of results -->"
)

// writeSection replaces the generated section of path (or appends one).
func writeSection(path, section string) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	block := beginMark + "\n" + section + "\n![ratios to net/http](" + filepath.Base(strings.TrimSuffix(path, ".md")) + ".svg)\n" + endMark
	s := string(old)
	i, j := strings.Index(s, beginMark), strings.Index(s, endMark)
	if i >= 0 && j > i {
		s = s[:i] + block + s[j+len(endMark):]
	} else {
		s = strings.TrimRight(s, "\n") + "\n\n" + block + "\n"
	}
	return os.WriteFile(path, []byte(s), 0o644)
}

func wrkVersion(p string) string {
	if p == "" {
		return ""
	}
	out, _ := exec.Command(p, "-v").CombinedOutput()
	line, _, _ := strings.Cut(string(out), " [")
	return strings.TrimSpace(line)
}

func commit() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(out))
	if st, _ := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); len(st) > 0 {
		c += " (with uncommitted changes)"
	}
	return c
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

// hostCPUs is the machine's CPU count (this process may be pinned to one).
func hostCPUs() int {
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		return runtime.NumCPU()
	}
	n := 0
	for _, r := range strings.Split(strings.TrimSpace(string(b)), ",") {
		lo, hi, ok := strings.Cut(r, "-")
		a, _ := strconv.Atoi(lo)
		z := a
		if ok {
			z, _ = strconv.Atoi(hi)
		}
		n += z - a + 1
	}
	return n
}

func kernel() string {
	b, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return strings.TrimSpace(string(b))
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	defer l.Close()
	return l.Addr().String()
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
