// Package arena is the waitron command's "arena" application: HttpArena's
// HTTP/1.1 endpoints as its documentation specifies them, written twice —
// on net/http's API (New) and on fasthttp's (NewFast) — with the same
// answers, so that waitron's two adapters and the servers they are
// measured against (net/http, fasthttp) serve the same work.
//
// Endpoints:
//
//	GET|POST /baseline11?a=…&b=…  the sum of the query's integers (and the body's, for a POST), text/plain
//	GET /pipeline                 ok, text/plain
//	GET /json/{count}?m=…         the first count items of dataset.json, each with total = price × quantity × m,
//	                              as {"items":[…],"count":count}; gzip or br when Accept-Encoding asks
//	POST /upload                  the number of body bytes read, text/plain
//	GET /static/{name}            a file of the static directory, with its Content-Type; 404 if there is none
//
// The data directory (Config.Dir: the command's --data-dir, else DATA_DIR,
// else /data, where HttpArena mounts it) holds dataset.json and static/.
// Generate writes data of the same shape. Responses are made per request:
// the JSON is serialised and compressed each time (through klauspost/
// compress's gzip and go-brrr's brotli), never cached. Static files are
// read from disk per request; with Config.Precompressed, a name.br or
// name.gz beside a file is sent instead when the client accepts that
// encoding (HttpArena ships such siblings).
package arena

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/klauspost/compress/gzip"
	brotli "github.com/molecule-man/go-brrr"
)

// Config says where the data is and how static files are served.
type Config struct {
	// Dir holds dataset.json and static/.
	Dir string
	// Precompressed serves name.br or name.gz, when present beside a
	// static file, to clients that accept br or gzip.
	Precompressed bool
}

// DefaultDir is where HttpArena mounts the data; the DATA_DIR environment
// variable overrides it.
const DefaultDir = "/data"

// DirFromEnv returns DATA_DIR, or DefaultDir.
func DirFromEnv() string {
	if d := os.Getenv("DATA_DIR"); d != "" {
		return d
	}
	return DefaultDir
}

// MaxCount is the most items /json/{count} returns (dataset.json has 50).
const MaxCount = 50

// Item is one entry of dataset.json.
type Item struct {
	ID       int      `json:"id"`
	Name     string   `json:"name"`
	Category string   `json:"category"`
	Price    int      `json:"price"`
	Quantity int      `json:"quantity"`
	Active   bool     `json:"active"`
	Tags     []string `json:"tags"`
	Rating   Rating   `json:"rating"`
}

// Rating is an item's rating.
type Rating struct {
	Score int `json:"score"`
	Count int `json:"count"`
}

// pricedItem is an Item as /json answers it: with its total.
type pricedItem struct {
	Item
	Total int `json:"total"`
}

type jsonAnswer struct {
	Items []pricedItem `json:"items"`
	Count int          `json:"count"`
}

// app is what both APIs' handlers share: the dataset and the static
// directory.
type app struct {
	items         []Item
	static        string // the static directory
	precompressed bool
}

func load(c Config) (*app, error) {
	if c.Dir == "" {
		c.Dir = DefaultDir
	}
	path := filepath.Join(c.Dir, "dataset.json")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("arena: %w (the data directory is --data-dir or DATA_DIR; go run ./benchmarks/arenadata -dir DIR writes one)", err)
	}
	var items []Item
	if err := json.Unmarshal(b, &items); err != nil {
		return nil, fmt.Errorf("arena: %s: %w", path, err)
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("arena: %s has no items", path)
	}
	static := filepath.Join(c.Dir, "static")
	if fi, err := os.Stat(static); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("arena: %s is not a directory (static files)", static)
	}
	return &app{items: items, static: static, precompressed: c.Precompressed}, nil
}

// maxBaselineBody is the longest body /baseline11 reads: an integer.
const maxBaselineBody = 64

// sum is /baseline11's answer: the query's integer values, plus the body's
// integer when there is a body. ok is false when one is not an integer.
func sum(query string, body []byte) (int64, bool) {
	var total int64
	for query != "" {
		var kv string
		kv, query, _ = strings.Cut(query, "&")
		_, v, _ := strings.Cut(kv, "=")
		if v == "" {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, false
		}
		total += n
	}
	if b := strings.TrimSpace(string(body)); b != "" {
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil {
			return 0, false
		}
		total += n
	}
	return total, true
}

// errBadCount names /json's bounds.
var errBadCount = fmt.Errorf("count must be an integer from 1 to %d, and m an integer", MaxCount)

// answerJSON serialises /json/{count}?m= for the first count items.
func (a *app) answerJSON(count string, m string) ([]byte, error) {
	n, err := strconv.Atoi(count)
	if err != nil || n < 1 || n > MaxCount {
		return nil, errBadCount
	}
	mul := 1
	if m != "" {
		if mul, err = strconv.Atoi(m); err != nil {
			return nil, errBadCount
		}
	}
	n = min(n, len(a.items))
	ans := jsonAnswer{Items: make([]pricedItem, n), Count: n}
	for i, it := range a.items[:n] {
		ans.Items[i] = pricedItem{Item: it, Total: it.Price * it.Quantity * mul}
	}
	return json.Marshal(ans)
}

// Compression levels: fast ones, as a server compressing every response
// on the fly would choose.
const (
	gzipLevel   = gzip.BestSpeed
	brotliLevel = 1
)

var (
	gzipWriters   = sync.Pool{New: func() any { w, _ := gzip.NewWriterLevel(io.Discard, gzipLevel); return w }}
	brotliWriters = sync.Pool{New: func() any { w, _ := brotli.NewWriter(io.Discard, brotliLevel); return w }}
)

// compress writes b to w in encoding ("gzip" or "br").
func compress(w io.Writer, encoding string, b []byte) error {
	switch encoding {
	case "gzip":
		z := gzipWriters.Get().(*gzip.Writer)
		defer gzipWriters.Put(z)
		z.Reset(w)
		if _, err := z.Write(b); err != nil {
			return err
		}
		return z.Close()
	case "br":
		z := brotliWriters.Get().(*brotli.Writer)
		defer brotliWriters.Put(z)
		z.Reset(w)
		if _, err := z.Write(b); err != nil {
			return err
		}
		return z.Close()
	}
	return errors.New("arena: unknown encoding " + encoding)
}

// chooseEncoding returns the encoding to answer with for an
// Accept-Encoding value: br if accepted, else gzip if accepted, else ""
// (identity).
func chooseEncoding(accept string) string {
	switch br, gz := accepted(accept); {
	case br:
		return "br"
	case gz:
		return "gzip"
	}
	return ""
}

// accepted reports whether an Accept-Encoding value admits br and gzip. A
// coding with q=0 is refused; "*" stands for both.
func accepted(accept string) (br, gz bool) {
	if accept == "" {
		return false, false
	}
	for _, part := range strings.Split(accept, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		ok := true
		for _, p := range strings.Split(params, ";") {
			k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
			if strings.EqualFold(strings.TrimSpace(k), "q") {
				q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				ok = err == nil && q > 0
			}
		}
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "br":
			br = ok
		case "gzip", "x-gzip":
			gz = ok
		case "*":
			br, gz = ok, ok
		}
	}
	return br, gz
}

// contentTypes are the static files' types, by extension, so that they do
// not depend on the host's /etc/mime.types (a container has none).
var contentTypes = map[string]string{
	".css":   "text/css; charset=utf-8",
	".js":    "text/javascript; charset=utf-8",
	".mjs":   "text/javascript; charset=utf-8",
	".html":  "text/html; charset=utf-8",
	".htm":   "text/html; charset=utf-8",
	".json":  "application/json",
	".svg":   "image/svg+xml",
	".webp":  "image/webp",
	".png":   "image/png",
	".jpg":   "image/jpeg",
	".jpeg":  "image/jpeg",
	".gif":   "image/gif",
	".ico":   "image/x-icon",
	".woff":  "font/woff",
	".woff2": "font/woff2",
	".txt":   "text/plain; charset=utf-8",
	".xml":   "application/xml",
	".wasm":  "application/wasm",
}

func contentType(name string) string {
	if t, ok := contentTypes[strings.ToLower(filepath.Ext(name))]; ok {
		return t
	}
	return "application/octet-stream"
}

// staticFile is what /static/{name} sends: the path of the file (or of its
// precompressed sibling), its encoding ("" for the file itself) and type.
type staticFile struct {
	path, encoding, contentType string
}

// findStatic resolves name in the static directory: a plain file name
// (no separators, not hidden), else ok is false (a 404). With
// precompressed serving, a .br or .gz sibling the client accepts is
// preferred.
func (a *app) findStatic(name, acceptEncoding string) (staticFile, bool) {
	if name == "" || strings.ContainsAny(name, "/\\\x00") || strings.HasPrefix(name, ".") {
		return staticFile{}, false
	}
	path := filepath.Join(a.static, name)
	fi, err := os.Stat(path)
	if err != nil || !fi.Mode().IsRegular() {
		return staticFile{}, false
	}
	f := staticFile{path: path, contentType: contentType(name)}
	if !a.precompressed {
		return f, true
	}
	br, gz := accepted(acceptEncoding)
	for _, c := range []struct {
		ok       bool
		ext, enc string
	}{{br, ".br", "br"}, {gz, ".gz", "gzip"}} {
		if !c.ok {
			continue
		}
		if fi, err := os.Stat(path + c.ext); err == nil && fi.Mode().IsRegular() {
			f.path, f.encoding = path+c.ext, c.enc
			return f, true
		}
	}
	return f, true
}
