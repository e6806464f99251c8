package targetapp

import (
	"strconv"
	"time"
)

// Caps bound what one request may ask of the target app, so that the app
// can face clients it does not know: a larger value is a 400, not a
// longer wait or a larger response.
type Caps struct {
	MaxDelay time.Duration // /delay/{ms}
	MaxBytes int64         // /bytes/{n}, and n × size for /stream/{n}
}

// DefaultCaps are the caps of New and NewFast.
var DefaultCaps = Caps{MaxDelay: 10 * time.Second, MaxBytes: 64 << 20}

// indexOf is the app's index for caps c; delayNote says what /delay does
// when the client goes.
func indexOf(c Caps, delayNote string) string {
	return `waitron target app
/                  this list
/plaintext         Hello, World! as text/plain
/json              {"message":"Hello, World!"}
/echo              the request body, with its Content-Type
/request[/...]     the request as the handler saw it, as JSON
/bytes/{n}         exactly n bytes with a Content-Length (n ≤ ` + strconv.FormatInt(c.MaxBytes, 10) + `)
/stream/{n}?size=s n chunks of s bytes (default 1024), each flushed (n × s ≤ ` + strconv.FormatInt(c.MaxBytes, 10) + `)
/delay/{ms}        answers after ms milliseconds, ` + delayNote + ` (ms ≤ ` + strconv.FormatInt(c.MaxDelay.Milliseconds(), 10) + `)
/status/{code}     answers with that status; /status/200:0.9,500:0.1 picks one by weight
/sse/{n}?ms=t      n server-sent events, one every t ms (default 0), each flushed (n × t ≤ the /delay cap)
/drip?bytes=n&ms=t n bytes paced evenly over t ms, with a Content-Length (n within the size cap, t the /delay cap)
/gzip              a JSON document, gzip-compressed when Accept-Encoding allows it
/ws                a WebSocket echo (coder/websocket; messages up to 1 MiB), for k6 or websocat
/cpu/{n}           hashes 1 KiB n times (SHA-256) and answers the digest: a CPU-bound handler (n ≤ 1000000)
/panic             the handler panics
/runtime           the serving process's pid, goroutines and heap, as JSON
/upgrade/echo      with Upgrade: echo, 101 and then every byte sent is echoed (a hijacked connection)
`
}

// delay parses /delay's ms under c. ok false: the message for a 400.
func (c Caps) delay(s string) (time.Duration, string, bool) {
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil || ms < 0 || ms > c.MaxDelay.Milliseconds() {
		return 0, "ms must be an integer from 0 to " + strconv.FormatInt(c.MaxDelay.Milliseconds(), 10), false
	}
	return time.Duration(ms) * time.Millisecond, "", true
}

// bytes parses /bytes's n under c.
func (c Caps) bytes(s string) (int64, string, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > c.MaxBytes {
		return 0, "n must be an integer from 0 to " + strconv.FormatInt(c.MaxBytes, 10), false
	}
	return n, "", true
}

// stream parses /stream's n and size (empty: 1024) under c.
func (c Caps) stream(ns, sizes string) (int, int, string, bool) {
	n, err1 := strconv.Atoi(ns)
	size, err2 := 1024, error(nil)
	if sizes != "" {
		size, err2 = strconv.Atoi(sizes)
	}
	if err1 != nil || err2 != nil || n < 0 || size < 0 || size > 0 && int64(n) > c.MaxBytes/int64(size) {
		return 0, 0, "n and size must be non-negative integers, n × size at most " + strconv.FormatInt(c.MaxBytes, 10), false
	}
	return n, size, "", true
}

var (
	helloText = []byte("Hello, World!")
	helloJSON = []byte(`{"message":"Hello, World!"}`)
	pattern   = []byte("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-_")
)
