// Package targetapp is the built-in "target" application of the waitron
// command: a small set of endpoints for load generators and conformance
// probes. It is a plain http.Handler, so the benchmark peers serve exactly
// the same code.
package targetapp

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/waitron/waitron/internal/adapter"
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
/ws                a WebSocket echo (coder/websocket; messages up to 1 MiB), for k6 or websocat; net/http app only
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

// New returns the target application with DefaultCaps.
func New() http.Handler { return NewWith(DefaultCaps) }

// NewWith returns the target application with caps c.
func NewWith(c Caps) http.Handler {
	index := indexOf(c, "sooner if the client goes")
	mux := http.NewServeMux()
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, index)
	})
	mux.HandleFunc("/plaintext", func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = []string{"text/plain"}
		w.Write(helloText)
	})
	mux.HandleFunc("/json", func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = []string{"application/json"}
		w.Write(helloJSON)
	})
	mux.HandleFunc("/echo", echo)
	mux.HandleFunc("/request", describe)
	mux.HandleFunc("/request/{rest...}", describe)
	mux.HandleFunc("/bytes/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, msg, ok := c.bytes(r.PathValue("n"))
		if !ok {
			http.Error(w, msg, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		writePattern(w, n)
	})
	mux.HandleFunc("/stream/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, size, msg, ok := c.stream(r.PathValue("n"), r.URL.Query().Get("size"))
		if !ok {
			http.Error(w, msg, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		rc := http.NewResponseController(w)
		for i := 0; i < n; i++ {
			if writePattern(w, int64(size)) != nil || rc.Flush() != nil {
				return
			}
		}
	})
	mux.HandleFunc("/delay/{ms}", func(w http.ResponseWriter, r *http.Request) {
		d, msg, ok := c.delay(r.PathValue("ms"))
		if !ok {
			http.Error(w, msg, http.StatusBadRequest)
			return
		}
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "delayed "+strconv.FormatInt(d.Milliseconds(), 10)+" ms\n")
	})
	mux.HandleFunc("/status/{code}", func(w http.ResponseWriter, r *http.Request) {
		code, ok := pickStatus(r.PathValue("code"))
		if !ok {
			http.Error(w, statusUsage, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(code)
		if code != http.StatusNoContent && code != http.StatusNotModified {
			io.WriteString(w, strconv.Itoa(code)+" "+http.StatusText(code)+"\n")
		}
	})
	mux.HandleFunc("/sse/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, every, msg, ok := c.sse(r.PathValue("n"), r.URL.Query().Get("ms"))
		if !ok {
			http.Error(w, msg, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		rc := http.NewResponseController(w)
		for i := range n {
			if i > 0 && every > 0 {
				t := time.NewTimer(every)
				select {
				case <-t.C:
				case <-r.Context().Done():
					t.Stop()
					return
				}
			}
			if _, err := io.WriteString(w, sseEvent(i)); err != nil || rc.Flush() != nil {
				return
			}
		}
	})
	mux.HandleFunc("/drip", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		n, every, msg, ok := c.drip(q.Get("bytes"), q.Get("ms"))
		if !ok {
			http.Error(w, msg, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		rc := http.NewResponseController(w)
		for i, piece := range dripPieces(n) {
			if i > 0 {
				t := time.NewTimer(every)
				select {
				case <-t.C:
				case <-r.Context().Done():
					t.Stop()
					return
				}
			}
			if writePattern(w, piece) != nil || rc.Flush() != nil {
				return
			}
		}
	})
	mux.HandleFunc("/gzip", func(w http.ResponseWriter, r *http.Request) {
		body, encoding := gzipDoc(r.Header.Get("Accept-Encoding"))
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Vary", "Accept-Encoding")
		if encoding != "" {
			w.Header().Set("Content-Encoding", encoding)
		}
		w.Write(body)
	})
	mux.HandleFunc("/ws", wsEcho)
	mux.HandleFunc("/cpu/{n}", func(w http.ResponseWriter, r *http.Request) {
		sum, ok := cpuWork(r.PathValue("n"))
		if !ok {
			http.Error(w, cpuUsage, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, sum+"\n")
	})
	mux.HandleFunc("/runtime", func(w http.ResponseWriter, r *http.Request) {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]uint64{"pid": uint64(os.Getpid()), "goroutines": uint64(runtime.NumGoroutine()),
			"heap_alloc": m.HeapAlloc, "heap_inuse": m.HeapInuse, "num_gc": uint64(m.NumGC)})
	})
	mux.HandleFunc("/upgrade/echo", upgradeEcho)
	mux.HandleFunc("/panic", func(w http.ResponseWriter, r *http.Request) {
		panic("the /panic endpoint panics on purpose")
	})
	return mux
}

// upgradeEcho switches the connection to a protocol that echoes every
// byte (RFC 9110 §7.8), by hijacking it: the load target for upgraded
// connections (WebSocket-like) without a WebSocket library.
func upgradeEcho(w http.ResponseWriter, r *http.Request) {
	if !strings.EqualFold(r.Header.Get("Upgrade"), "echo") {
		w.Header().Set("Upgrade", "echo")
		w.Header().Set("Connection", "Upgrade")
		http.Error(w, "send Upgrade: echo", http.StatusUpgradeRequired)
		return
	}
	nc, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, "cannot take the connection: "+err.Error(), http.StatusInternalServerError)
		return
	}
	defer nc.Close()
	io.WriteString(nc, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
	if n := brw.Reader.Buffered(); n > 0 { // sent with the request
		b, _ := brw.Reader.Peek(n)
		nc.Write(b)
	}
	io.Copy(nc, nc)
}

func echo(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		w.Header().Set("Content-Type", ct)
	} else {
		w.Header().Set("Content-Type", "application/octet-stream")
	}
	if r.ContentLength >= 0 {
		w.Header().Set("Content-Length", strconv.FormatInt(r.ContentLength, 10))
	}
	io.Copy(w, r.Body)
}

func writePattern(w io.Writer, n int64) error {
	var buf [4096]byte
	for i := range buf {
		buf[i] = pattern[i%len(pattern)]
	}
	for n > 0 {
		k := min(n, int64(len(buf)))
		if _, err := w.Write(buf[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// RequestInfo is the JSON document /request answers with.
type RequestInfo struct {
	Method        string              `json:"method"`
	RequestURI    string              `json:"request_uri"`
	Path          string              `json:"path"`
	RawPath       string              `json:"raw_path"`
	Query         string              `json:"query"`
	Proto         string              `json:"proto"`
	Host          string              `json:"host"`
	RemoteAddr    string              `json:"remote_addr"`
	Scheme        string              `json:"scheme"`
	ScriptName    string              `json:"script_name"` // the url_prefix stripped from Path; "" without one
	ContentLength int64               `json:"content_length"`
	BodyLength    int64               `json:"body_length"`
	Headers       map[string][]string `json:"headers"`
}

func describe(w http.ResponseWriter, r *http.Request) {
	n, _ := io.Copy(io.Discard, r.Body)
	scheme, scriptName := r.URL.Scheme, ""
	if info, ok := adapter.RequestInfo(r); ok {
		scheme, scriptName = info.Scheme, info.ScriptName
	}
	if scheme == "" {
		scheme = "http"
		if r.TLS != nil {
			scheme = "https"
		}
	}
	info := RequestInfo{
		Method: r.Method, RequestURI: r.RequestURI, Path: r.URL.Path, RawPath: r.URL.RawPath,
		Query: r.URL.RawQuery, Proto: r.Proto, Host: r.Host, RemoteAddr: r.RemoteAddr, Scheme: scheme,
		ScriptName: scriptName, ContentLength: r.ContentLength, BodyLength: n, Headers: r.Header,
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(info)
}

const (
	statusUsage = "code must be an integer from 200 to 999, or code:weight pairs such as 200:0.9,500:0.1"
	cpuUsage    = "n must be an integer from 0 to 1000000"
	maxCPU      = 1000000
)

// pickStatus reads /status's code: one code, or code:weight pairs, of
// which it picks one at random by weight.
func pickStatus(spec string) (int, bool) {
	if !strings.Contains(spec, ":") {
		code, err := strconv.Atoi(spec)
		return code, err == nil && code >= 200 && code <= 999
	}
	var codes []int
	var weights []float64
	total := 0.0
	for _, part := range strings.Split(spec, ",") {
		c, w, ok := strings.Cut(part, ":")
		code, err1 := strconv.Atoi(c)
		weight, err2 := strconv.ParseFloat(w, 64)
		if !ok || err1 != nil || err2 != nil || code < 200 || code > 999 || !(weight >= 0) || weight > 1e9 {
			return 0, false
		}
		codes, weights, total = append(codes, code), append(weights, weight), total+weight
	}
	if total <= 0 {
		return 0, false
	}
	x := rand.Float64() * total
	for i, w := range weights {
		if x < w {
			return codes[i], true
		}
		x -= w
	}
	return codes[len(codes)-1], true
}

// cpuWork hashes a 1 KiB block n times, each round over the last digest
// and the block, and returns the last digest in hex: a fixed amount of
// CPU per request.
func cpuWork(ns string) (string, bool) {
	n, err := strconv.Atoi(ns)
	if err != nil || n < 0 || n > maxCPU {
		return "", false
	}
	var block [1024]byte
	copy(block[:], pattern)
	sum := sha256.Sum256(nil)
	for range n {
		h := sha256.New()
		h.Write(sum[:])
		h.Write(block[:])
		h.Sum(sum[:0])
	}
	return hex.EncodeToString(sum[:]), true
}

// sse parses /sse's n and ms (empty: 0) under c: n events at most a
// million, and their whole duration within the /delay cap.
func (c Caps) sse(ns, mss string) (int, time.Duration, string, bool) {
	const usage = "n and ms must be non-negative integers, n at most 1000000 and n × ms within the /delay cap"
	n, err1 := strconv.Atoi(ns)
	ms, err2 := 0, error(nil)
	if mss != "" {
		ms, err2 = strconv.Atoi(mss)
	}
	if err1 != nil || err2 != nil || n < 0 || n > 1000000 || ms < 0 || ms > 0 && int64(n) > c.MaxDelay.Milliseconds()/int64(ms) {
		return 0, 0, usage, false
	}
	return n, time.Duration(ms) * time.Millisecond, "", true
}

// sseEvent is /sse's event number i.
func sseEvent(i int) string {
	return "id: " + strconv.Itoa(i) + "\ndata: event " + strconv.Itoa(i) + "\n\n"
}

// dripPiecesMax is how many pieces /drip sends its bytes in, at most.
const dripPiecesMax = 50

// drip parses /drip's bytes and ms (empty: 0) under c, and returns the
// pause between its pieces.
func (c Caps) drip(ns, mss string) (int64, time.Duration, string, bool) {
	usage := "bytes must be an integer from 1 to " + strconv.FormatInt(c.MaxBytes, 10) +
		" and ms one from 0 to " + strconv.FormatInt(c.MaxDelay.Milliseconds(), 10)
	n, err1 := strconv.ParseInt(ns, 10, 64)
	ms, err2 := int64(0), error(nil)
	if mss != "" {
		ms, err2 = strconv.ParseInt(mss, 10, 64)
	}
	if err1 != nil || err2 != nil || n < 1 || n > c.MaxBytes || ms < 0 || ms > c.MaxDelay.Milliseconds() {
		return 0, 0, usage, false
	}
	pieces := int64(len(dripPieces(n)))
	every := time.Duration(0)
	if pieces > 1 {
		every = time.Duration(ms) * time.Millisecond / time.Duration(pieces-1)
	}
	return n, every, "", true
}

// dripPieces splits n bytes into at most dripPiecesMax pieces, the first
// ones a byte larger.
func dripPieces(n int64) []int64 {
	k := min(n, dripPiecesMax)
	pieces := make([]int64, k)
	for i := range pieces {
		pieces[i] = n / k
		if int64(i) < n%k {
			pieces[i]++
		}
	}
	return pieces
}

// gzipDocs is /gzip's document, plain and gzip-compressed (made once).
var gzipDocs = func() (d struct{ plain, gzipped []byte }) {
	items := make([]map[string]any, 100)
	for i := range items {
		items[i] = map[string]any{"id": i, "name": "item " + strconv.Itoa(i), "tags": []string{"alpha", "beta", "gamma"}}
	}
	d.plain, _ = json.Marshal(map[string]any{"items": items})
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(d.plain)
	zw.Close()
	d.gzipped = b.Bytes()
	return d
}()

// gzipDoc returns /gzip's body for a request's Accept-Encoding, and the
// Content-Encoding it needs ("" for none).
func gzipDoc(accept string) ([]byte, string) {
	for _, part := range strings.Split(accept, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(coding), "gzip") && !strings.Contains(strings.ReplaceAll(params, " ", ""), "q=0") {
			return gzipDocs.gzipped, "gzip"
		}
	}
	return gzipDocs.plain, ""
}

// wsEcho is /ws: a WebSocket (coder/websocket, with its same-origin check)
// that echoes every message until the client closes or goes.
func wsEcho(w http.ResponseWriter, r *http.Request) {
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		return // Accept has answered
	}
	defer ws.CloseNow()
	ws.SetReadLimit(1 << 20)
	ctx := r.Context()
	for {
		kind, msg, err := ws.Read(ctx)
		if err != nil {
			return
		}
		if err := ws.Write(ctx, kind, msg); err != nil {
			return
		}
	}
}
