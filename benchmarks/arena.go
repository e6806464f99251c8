package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/waitron/waitron/internal/arena"
)

// HttpArena's HTTP/1.1 profiles (../shared/reference/httparena.md), run
// against the arena app: on waitron through each adapter, on net/http's
// server and on fasthttp's (benchmarks/peer -app arena), in the same run.
// Their load is wrk with a Lua script per profile; the data is generated
// once per run (internal/arena.Generate).

// arenaData is the data directory of this run, made on first use.
var arenaData string

func arenaDir() string {
	if arenaData == "" {
		d, err := os.MkdirTemp("", "waitron-arena-")
		check(err)
		check(arena.Generate(d))
		arenaData = d
	}
	return arenaData
}

func arenaWaitron(app string, extra ...string) func(bin, addr string) []string {
	return func(bin, addr string) []string {
		return append(waitron("--app", app, "--data-dir", arenaDir(), "--arena-precompressed")(bin, addr), extra...)
	}
}

func arenaPeer(kind string) func(bin, addr string) []string {
	return func(bin, addr string) []string {
		return append(peer(kind)(bin, addr), "-app", "arena", "-data", arenaDir(), "-precompressed")
	}
}

var (
	srvArena         = server{"waitron", arenaWaitron("arena")}
	srvArenaFast     = server{"waitron, fasthttp adapter", arenaWaitron("arena-fasthttp")}
	srvArenaNetHTTP  = server{"net/http", arenaPeer("nethttp")}
	srvArenaFastHTTP = server{"fasthttp", arenaPeer("fasthttp")}
	arenaServers     = []server{srvArena, srvArenaFast, srvArenaNetHTTP, srvArenaFastHTTP}
	// The upload profile with waitron's defaults spools every 20 MB body
	// to a file (inbuf_overflow is 512 KiB); raised past the body, the
	// body stays in memory: the difference is what the spool costs.
	srvArenaInMemory     = server{"waitron --inbuf-overflow 32MiB", arenaWaitron("arena", "--inbuf-overflow", "33554432")}
	srvArenaFastInMemory = server{"waitron, fasthttp adapter, --inbuf-overflow 32MiB", arenaWaitron("arena-fasthttp", "--inbuf-overflow", "33554432")}
)

// baselineRequests are the baseline profile's three requests.
var baselineRequests = []string{
	"GET /baseline11?a=13&b=42 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
	"POST /baseline11?a=13&b=42 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\r\n20",
	"POST /baseline11?a=13&b=42 HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n20\r\n0\r\n\r\n",
}

// noiseRequests are the noisy profile's malformed requests: each is a 400
// from a strict server (a bad Content-Length, a space before a colon, a
// bad version, a bare LF line, a control character in a field value).
var noiseRequests = []string{
	"POST /baseline11?a=13&b=42 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2x\r\n\r\n20",
	"GET /baseline11?a=13&b=42 HTTP/1.1\r\nHost : 127.0.0.1\r\n\r\n",
	"GET /baseline11?a=13&b=42 HTTP/9.1\r\nHost: 127.0.0.1\r\n\r\n",
	"GET /baseline11?a=13&b=42 HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Bad: a\x01b\r\n\r\n",
}

// rotate is a wrk script that sends reqs in turn (one thread: the turn is
// the thread's, shared by its connections).
func rotate(reqs []string) string {
	var b strings.Builder
	b.WriteString("local reqs = {\n")
	for _, r := range reqs {
		fmt.Fprintf(&b, "  %q,\n", r)
	}
	b.WriteString("}\nlocal i = 0\nrequest = function()\n  i = i + 1\n  return reqs[(i - 1) % #reqs + 1]\nend\n")
	return luaEscapes.Replace(b.String())
}

// luaEscapes turns Go's %q escapes that Lua reads otherwise into Lua's.
var luaEscapes = strings.NewReplacer(`\x01`, `\1`)

func withHeader(reqs []string, header string) []string {
	out := make([]string, len(reqs))
	for i, r := range reqs {
		head, body, _ := strings.Cut(r, "\r\n\r\n")
		out[i] = head + "\r\n" + header + "\r\n\r\n" + body
	}
	return out
}

// shortLived is the baseline mix with every tenth request asking to
// close: wrk opens a new connection for the next one.
func shortLived() []string {
	var reqs []string
	for i := range 10 {
		r := baselineRequests[i%len(baselineRequests)]
		if i == 9 {
			r = withHeader([]string{r}, "Connection: close")[0]
		}
		reqs = append(reqs, r)
	}
	return reqs
}

func jsonRequests(extra string) []string {
	var reqs []string
	for _, p := range [][2]int{{1, 3}, {5, 7}, {10, 2}, {15, 5}, {25, 4}, {40, 8}, {50, 6}} {
		r := fmt.Sprintf("GET /json/%d?m=%d HTTP/1.1\r\nHost: 127.0.0.1\r\n", p[0], p[1])
		if extra != "" {
			r += extra + "\r\n"
		}
		reqs = append(reqs, r+"\r\n")
	}
	return reqs
}

func staticRequests() []string {
	var reqs []string
	for _, f := range arena.StaticFiles {
		reqs = append(reqs, "GET /static/"+f.Name+" HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept-Encoding: br;q=1, gzip;q=0.8\r\n\r\n")
	}
	return reqs
}

// noisy interleaves the baseline mix with malformed requests, three valid
// to one malformed.
func noisy() []string {
	var reqs []string
	for i, n := range noiseRequests {
		for j := range 3 {
			reqs = append(reqs, baselineRequests[(i+j)%len(baselineRequests)])
		}
		reqs = append(reqs, n)
	}
	return reqs
}

// upload is a wrk script posting a body of n bytes.
func upload(n int) string {
	return fmt.Sprintf("wrk.method = \"POST\"\nwrk.path = \"/upload\"\nwrk.body = string.rep(\"u\", %d)\nwrk.headers[\"Content-Type\"] = \"application/octet-stream\"\n", n)
}

func arenaWorkloads() []workload {
	return []workload{
		{group: groupArena, name: "arena-baseline", title: "arena baseline: GET, POST and chunked POST /baseline11 rotated, 256 connections", unit: "req/s",
			servers: arenaServers, spec: loadSpec{path: "/baseline11", conns: 256, script: rotate(baselineRequests)}},
		{group: groupArena, name: "arena-pipelined", title: "arena pipelined: 16 × /pipeline per write, 256 connections", unit: "req/s",
			servers: arenaServers, spec: loadSpec{path: "/pipeline", conns: 256, pipeline: 16}},
		{group: groupArena, name: "arena-short", title: "arena short-lived: the baseline mix, a connection closed every 10 requests, 256 at a time", unit: "req/s",
			servers: arenaServers, spec: loadSpec{path: "/baseline11", conns: 256, script: rotate(shortLived())}},
		{group: groupArena, name: "arena-json", title: "arena JSON: /json/{count}?m= over the profile's 7 pairs, 256 connections", unit: "req/s",
			servers: arenaServers, spec: loadSpec{path: "/json/1", conns: 256, script: rotate(jsonRequests(""))}},
		{group: groupArena, name: "arena-json-comp", title: "arena compressed JSON: the same with Accept-Encoding: gzip, br", unit: "req/s",
			servers: arenaServers, spec: loadSpec{path: "/json/1", conns: 256, script: rotate(jsonRequests("Accept-Encoding: gzip, br"))}},
		{group: groupArena, name: "arena-upload", title: "arena upload: 20 MB POST /upload, 8 connections", unit: "req/s",
			servers: append(arenaServers[:2:2], append([]server{srvArenaInMemory, srvArenaFastInMemory}, arenaServers[2:]...)...),
			spec:    loadSpec{path: "/upload", conns: 8, script: upload(20_000_000)}},
		{group: groupArena, name: "arena-static", title: "arena static: 20 files rotated, Accept-Encoding br and gzip, 256 connections", unit: "req/s",
			servers: arenaServers, spec: loadSpec{path: "/static/index.html", conns: 256, script: rotate(staticRequests())}},
		{group: groupArena, name: "arena-noisy", title: "arena noisy: the baseline mix with one malformed request in four, 256 connections; 2xx/s", unit: "2xx/s",
			servers: arenaServers, spec: loadSpec{path: "/baseline11", conns: 256, script: rotate(noisy()), only2xx: true}},
	}
}
