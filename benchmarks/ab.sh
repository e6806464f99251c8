#!/bin/bash
# ab.sh: pinned A/B runs of server builds, one change at a time.
#
#   benchmarks/ab.sh [-c CONNS] [-s SCRIPT.lua] [-k CERT:KEY] PATH ROUNDS BIN... [-- SERVER ARGS...]
#
# Each round starts every BIN in turn under `taskset -c 0` listening on
# 127.0.0.1:18090 (BIN is the waitron command, or any script that execs a
# server with the arguments it is given), warms it up with `taskset -c 1
# wrk -t1 -c CONNS -d2s`, measures `-d5s`, and prints req/s and the
# server's CPU time per request (utime + stime from /proc/PID/stat over
# the measured run, divided by the requests wrk counted) with its user and
# system parts and how busy the load generator's CPU was (from /proc/stat:
# at 95 % or more, req/s is the load generator's limit as much as the
# server's), then stops the server by its PID. The docs' "pinned A/B" figures come from it.
# With -k CERT:KEY the servers serve HTTPS (--tls-listen with that pair) and wrk
# speaks it; with -s benchmarks/close.lua each request is a new TLS handshake.
set -euo pipefail
conns=64 script=() tls=()
scheme=http
while getopts "c:s:k:" o; do
	case $o in
	c) conns=$OPTARG ;;
	s) script=(-s "$OPTARG") ;;
	k) tls=(--certfile "${OPTARG%%:*}" --keyfile "${OPTARG#*:}") scheme=https ;;
	*) exit 2 ;;
	esac
done
shift $((OPTIND - 1))
path=$1 rounds=$2
shift 2
bins=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do bins+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
addr=127.0.0.1:18090
# cpu1 prints CPU 1's busy and total clock ticks since boot (/proc/stat:
# idle and iowait are idle, the rest of the first eight fields busy).
cpu1() { awk '/^cpu1 / {print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }
for r in $(seq 1 "$rounds"); do
	for b in "${bins[@]}"; do
		if [ ${#tls[@]} -gt 0 ]; then
			taskset -c 0 "$b" --tls-listen $addr "${tls[@]}" --connection-limit 20000 "$@" >/dev/null 2>&1 &
		else
			taskset -c 0 "$b" --listen $addr --connection-limit 20000 "$@" >/dev/null 2>&1 &
		fi
		pid=$!
		for i in $(seq 1 50); do curl -sk -o /dev/null "$scheme://$addr/" && break; sleep 0.1; done
		taskset -c 1 wrk -t1 -c"$conns" -d2s "${script[@]}" "$scheme://$addr$path" >/dev/null
		read -r u0 s0 < <(awk '{print $14, $15}' /proc/$pid/stat)
		read -r lb0 lt0 < <(cpu1)
		out=$(taskset -c 1 wrk -t1 -c"$conns" -d5s "${script[@]}" "$scheme://$addr$path")
		read -r u1 s1 < <(awk '{print $14, $15}' /proc/$pid/stat)
		read -r lb1 lt1 < <(cpu1)
		reqs=$(echo "$out" | awk '/requests in/ {print $1}')
		rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
		echo "round $r $(basename "$b"): $rps req/s, $(awk -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v n="$reqs" -v hz="$(getconf CLK_TCK)" \
			'BEGIN {printf "%.2f us CPU/request (user %.2f, system %.2f)", (u+s)*1e6/hz/n, u*1e6/hz/n, s*1e6/hz/n}'), load core $(awk -v b=$((lb1 - lb0)) -v t=$((lt1 - lt0)) 'BEGIN {printf "%.0f%%", (t > 0 ? 100*b/t : 0)}')"
		kill "$pid"
		wait "$pid" 2>/dev/null || true
	done
done
