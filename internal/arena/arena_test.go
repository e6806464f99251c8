package arena_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	brotli "github.com/molecule-man/go-brrr"

	"github.com/waitron/waitron"
	"github.com/waitron/waitron/adapter/fastadapter"
	"github.com/waitron/waitron/internal/arena"
	"github.com/waitron/waitron/internal/testutil"
)

func TestMain(m *testing.M) { os.Exit(testutil.RunCheckingLeaks(m)) }

// servers starts the arena app for cfg four ways — net/http's server,
// fasthttp's, and waitron's two adapters with waitron's defaults — and
// returns their addresses by name; they stop when the test ends.
func servers(t *testing.T, cfg arena.Config) map[string]string {
	t.Helper()
	h, err := arena.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	fh, err := arena.NewFast(cfg)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{"fasthttp": testutil.FastPeer(t, fh)}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: h}
	done := make(chan struct{})
	go func() { hs.Serve(ln); close(done) }()
	t.Cleanup(func() { hs.Close(); <-done })
	out["net/http"] = ln.Addr().String()

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for name, mk := range map[string]func(waitron.Options) (*waitron.Server, error){
		"waitron":                   func(o waitron.Options) (*waitron.Server, error) { return waitron.NewServer(h, o, log) },
		"waitron, fasthttp adapter": func(o waitron.Options) (*waitron.Server, error) { return fastadapter.NewServer(fh, o, log) },
	} {
		opts := waitron.DefaultOptions()
		if err := opts.Set("listen", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		s, err := mk(opts)
		if err != nil {
			t.Fatal(err)
		}
		served := make(chan error, 1)
		go func() { served <- s.ListenAndServe() }()
		<-s.Ready()
		if err := s.ReadyErr(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Shutdown(context.Background()); <-served })
		out[name] = s.Addrs()[0].String()
	}
	return out
}

func data(t *testing.T) string {
	dir := t.TempDir()
	if err := arena.Generate(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// exchange writes each piece of raw as a write of its own on a new
// connection and reads n responses.
func exchange(t *testing.T, addr string, n int, pieces ...string) []string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	for _, p := range pieces {
		if _, err := io.WriteString(c, p); err != nil {
			t.Fatal(err)
		}
	}
	br := bufio.NewReader(c)
	var out []string
	for range n {
		resp, body := testutil.ReadResponse(t, br, "GET")
		out = append(out, fmt.Sprintf("%d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body))
	}
	return out
}

// TestBaselineAndPipeline: /baseline11's three kinds of request, each also
// split over several writes where HttpArena's validation splits them, and
// sixteen pipelined /pipeline requests, get the same answers from all four
// servers.
func TestBaselineAndPipeline(t *testing.T) {
	for name, addr := range servers(t, arena.Config{Dir: data(t)}) {
		t.Run(name, func(t *testing.T) {
			const (
				get     = "GET /baseline11?a=13&b=42 HTTP/1.1\r\nHost: x\r\n\r\n"
				post    = "POST /baseline11?a=13&b=42 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n20"
				chunked = "POST /baseline11?a=13&b=42 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n20\r\n0\r\n\r\n"
			)
			for _, c := range []struct {
				pieces []string
				want   string
			}{
				{[]string{get}, "200 text/plain 55"},
				{[]string{post}, "200 text/plain 75"},
				{[]string{chunked}, "200 text/plain 75"},
				{[]string{"GET /basel", "ine11?a=13&b=42 HTTP/1.1\r\nHost: x\r\n\r\n"}, "200 text/plain 55"},
				{[]string{"POST /baseline11?a=13&b=42 HTTP/1.1\r\n", "Host: x\r\nContent-Length: 2\r\n\r\n20"}, "200 text/plain 75"},
				{[]string{"POST /baseline11?a=13&b=42 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n", "20"}, "200 text/plain 75"},
				{[]string{"POST /baseline11?a=13&b=42 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n2", "0"}, "200 text/plain 75"},
				{[]string{"POST /baseline11?a=13&b=42 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n2", "0\r\n0\r\n\r\n"}, "200 text/plain 75"},
				{[]string{"GET /baseline11?a=x HTTP/1.1\r\nHost: x\r\n\r\n"}, "400 text/plain; charset=utf-8 the query's values and the body must be integers\n"},
			} {
				if got := exchange(t, addr, 1, c.pieces...)[0]; got != c.want {
					t.Errorf("%q: %q, want %q", c.pieces, got, c.want)
				}
			}
			got := exchange(t, addr, 16, strings.Repeat("GET /pipeline HTTP/1.1\r\nHost: x\r\n\r\n", 16))
			for i, g := range got {
				if g != "200 text/plain ok" {
					t.Errorf("pipelined response %d: %q", i, g)
				}
			}
		})
	}
}

// TestJSON: /json/{count}?m= has the first count items with their totals,
// compressed with gzip or br when asked (and decompressing to the same
// document), identity when not, from all four servers.
func TestJSON(t *testing.T) {
	dir := data(t)
	var items []arena.Item
	b, _ := os.ReadFile(filepath.Join(dir, "dataset.json"))
	if err := json.Unmarshal(b, &items); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableCompression: true}}
	defer client.CloseIdleConnections()
	for name, addr := range servers(t, arena.Config{Dir: dir}) {
		t.Run(name, func(t *testing.T) {
			for _, c := range [][2]int{{1, 3}, {5, 7}, {10, 2}, {15, 5}, {25, 4}, {40, 8}, {50, 6}} {
				url := fmt.Sprintf("http://%s/json/%d?m=%d", addr, c[0], c[1])
				var plain []byte
				for _, enc := range []string{"", "gzip", "br", "gzip, br"} {
					req, _ := http.NewRequest("GET", url, nil)
					if enc != "" {
						req.Header.Set("Accept-Encoding", enc)
					}
					resp, err := client.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					want := map[string]string{"": "", "gzip": "gzip", "br": "br", "gzip, br": "br"}[enc]
					if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("Content-Encoding") != want {
						t.Fatalf("%s (%q): %d %q %q", url, enc, resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Content-Encoding"))
					}
					body = decode(t, want, body)
					if plain == nil {
						plain = body
						checkJSON(t, body, items, c[0], c[1])
					} else if !bytes.Equal(body, plain) {
						t.Errorf("%s: the %s body decodes to another document", url, want)
					}
				}
			}
			for _, bad := range []string{"/json/0", "/json/51", "/json/x", "/json/3?m=z"} {
				resp, err := client.Get("http://" + addr + bad)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != 400 {
					t.Errorf("%s: %d, want 400", bad, resp.StatusCode)
				}
			}
		})
	}
}

func decode(t *testing.T, enc string, b []byte) []byte {
	t.Helper()
	var r io.Reader
	switch enc {
	case "":
		return b
	case "gzip":
		z, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		r = z
	case "br":
		r = brotli.NewReader(bytes.NewReader(b))
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("decoding %s: %v", enc, err)
	}
	return out
}

func checkJSON(t *testing.T, body []byte, items []arena.Item, count, m int) {
	t.Helper()
	var got struct {
		Items []struct {
			arena.Item
			Total int `json:"total"`
		} `json:"items"`
		Count int `json:"count"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	if got.Count != count || len(got.Items) != count {
		t.Fatalf("count %d with %d items, want %d", got.Count, len(got.Items), count)
	}
	for i, it := range got.Items {
		if it.ID != items[i].ID || it.Total != items[i].Price*items[i].Quantity*m {
			t.Errorf("item %d: id %d total %d, want id %d total %d", i, it.ID, it.Total, items[i].ID, items[i].Price*items[i].Quantity*m)
		}
	}
}

// TestUpload: /upload answers the number of bytes read, for HttpArena's
// sizes, with a Content-Length and chunked, from all four servers (20 MB
// is spooled to a file by waitron's defaults).
func TestUpload(t *testing.T) {
	client := &http.Client{Timeout: 60 * time.Second}
	defer client.CloseIdleConnections()
	for name, addr := range servers(t, arena.Config{Dir: data(t)}) {
		t.Run(name, func(t *testing.T) {
			for _, n := range []int{17, 48, 500_000, 20_000_000} {
				for _, chunked := range []bool{false, true} {
					var body io.Reader = bytes.NewReader(bytes.Repeat([]byte{'u'}, n))
					if chunked {
						body = io.MultiReader(body) // no length: chunked
					}
					resp, err := client.Post("http://"+addr+"/upload", "application/octet-stream", body)
					if err != nil {
						t.Fatal(err)
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 || string(b) != fmt.Sprint(n) {
						t.Errorf("%d bytes (chunked %v): %d %q", n, chunked, resp.StatusCode, b)
					}
				}
			}
		})
	}
}

// TestStatic: every file of the static set comes whole with its type; with
// precompressed serving a client accepting br and gzip gets a sibling that
// decompresses to the file (the binary ones come as they are); a missing
// file or a path out of the directory is a 404. All four servers.
func TestStatic(t *testing.T) {
	dir := data(t)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableCompression: true}}
	defer client.CloseIdleConnections()
	types := map[string]string{".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
		".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".json": "application/json",
		".webp": "image/webp", ".woff2": "font/woff2"}
	for _, pre := range []bool{false, true} {
		for name, addr := range servers(t, arena.Config{Dir: dir, Precompressed: pre}) {
			t.Run(fmt.Sprintf("%s/precompressed=%v", name, pre), func(t *testing.T) {
				for _, f := range arena.StaticFiles {
					want, _ := os.ReadFile(filepath.Join(dir, "static", f.Name))
					req, _ := http.NewRequest("GET", "http://"+addr+"/static/"+f.Name, nil)
					req.Header.Set("Accept-Encoding", "br;q=1, gzip;q=0.8")
					resp, err := client.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					enc := resp.Header.Get("Content-Encoding")
					binary := strings.HasSuffix(f.Name, ".webp") || strings.HasSuffix(f.Name, ".woff2")
					if wantEnc := map[bool]string{true: "br"}[pre && !binary]; enc != wantEnc {
						t.Errorf("%s: Content-Encoding %q, want %q", f.Name, enc, wantEnc)
					}
					if got := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || got != types[filepath.Ext(f.Name)] {
						t.Errorf("%s: %d %q", f.Name, resp.StatusCode, got)
					}
					if !bytes.Equal(decode(t, enc, body), want) {
						t.Errorf("%s: the body is not the file", f.Name)
					}
				}
				for _, p := range []string{"/static/missing.css", "/static/..%2fdataset.json", "/static/", "/static/.hidden"} {
					resp, err := client.Get("http://" + addr + p)
					if err != nil {
						t.Fatal(err)
					}
					resp.Body.Close()
					if resp.StatusCode != 404 {
						t.Errorf("%s: %d, want 404", p, resp.StatusCode)
					}
				}
			})
		}
	}
}

// TestMissingData: without a dataset the app is not made, and the error
// says where it looked and how to make one.
func TestMissingData(t *testing.T) {
	dir := t.TempDir()
	for _, mk := range []func(arena.Config) error{
		func(c arena.Config) error { _, err := arena.New(c); return err },
		func(c arena.Config) error { _, err := arena.NewFast(c); return err },
	} {
		err := mk(arena.Config{Dir: dir})
		if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "dataset.json")) || !strings.Contains(err.Error(), "arenadata") {
			t.Errorf("got %v", err)
		}
	}
}

// TestMethodsAndUnknownPaths: a method an endpoint does not take is a 405
// naming what it takes, an unknown path a 404, and HEAD is GET without
// the body, from all four servers alike.
func TestMethodsAndUnknownPaths(t *testing.T) {
	for name, addr := range servers(t, arena.Config{Dir: data(t)}) {
		t.Run(name, func(t *testing.T) {
			for _, c := range []struct {
				method, path string
				status       int
				allow        string
			}{
				{"POST", "/pipeline", 405, "GET, HEAD"},
				{"GET", "/upload", 405, "POST"},
				{"PUT", "/baseline11", 405, "GET, HEAD, POST"},
				{"DELETE", "/json/3", 405, "GET, HEAD"},
				{"GET", "/nothing", 404, ""},
				{"GET", "/json", 404, ""},
				{"HEAD", "/pipeline", 200, ""},
			} {
				raw := c.method + " " + c.path + " HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
				conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				conn.SetDeadline(time.Now().Add(10 * time.Second))
				io.WriteString(conn, raw)
				resp, body := testutil.ReadResponse(t, bufio.NewReader(conn), c.method)
				conn.Close()
				if resp.StatusCode != c.status || resp.Header.Get("Allow") != c.allow {
					t.Errorf("%s %s: %d Allow %q, want %d %q", c.method, c.path, resp.StatusCode, resp.Header.Get("Allow"), c.status, c.allow)
				}
				if c.method == "HEAD" && body != "" {
					t.Errorf("HEAD %s has a body: %q", c.path, body)
				}
			}
		})
	}
}
