// Package targetapp is the built-in "target" application of the waitron
// command: a small set of endpoints for load generators and conformance
// probes. It is a plain http.Handler, so the benchmark peers serve exactly
// the same code.
package targetapp

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/waitron/waitron/internal/adapter"
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
