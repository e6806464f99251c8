package targetapp

// The helpers of the endpoints both apps share: weighted statuses, the
// CPU-bound hashing, the drip's pieces, the compressed document, server-
// sent events and the WebSocket echo.

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"
)

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
	echoMessages(r.Context(), ws)
}

// echoMessages sends every message of ws back until the client closes or
// goes, or ctx ends.
func echoMessages(ctx context.Context, ws *websocket.Conn) {
	defer ws.CloseNow()
	ws.SetReadLimit(1 << 20)
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
