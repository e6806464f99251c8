package targetapp_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/waitron/waitron/internal/targetapp"
)

// TestCaps: both apps refuse, with a 400 naming the bound, a delay or a
// response size above their caps, answer at the caps, and list the caps
// in their index.
func TestCaps(t *testing.T) {
	caps := targetapp.Caps{MaxDelay: 5 * time.Millisecond, MaxBytes: 1000}
	h, fh := targetapp.NewWith(caps), targetapp.NewFastWith(caps)
	for path, want := range map[string]int{
		"/delay/5":            200,
		"/delay/6":            400,
		"/delay/86400000":     400,
		"/bytes/1000":         200,
		"/bytes/1001":         400,
		"/stream/10?size=100": 200,
		"/stream/11?size=100": 400,
		"/stream/1?size=1001": 400,
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		var ctx fasthttp.RequestCtx
		ctx.Request.SetRequestURI(path)
		fh(&ctx)
		if rec.Code != want || ctx.Response.StatusCode() != want {
			t.Errorf("%s: net/http app %d, fasthttp app %d, want %d", path, rec.Code, ctx.Response.StatusCode(), want)
		}
		if want == 400 && !strings.Contains(rec.Body.String(), "from 0 to") && !strings.Contains(rec.Body.String(), "at most") {
			t.Errorf("%s: the 400 does not name the bound: %q", path, rec.Body)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if !strings.Contains(rec.Body.String(), "(ms ≤ 5)") || !strings.Contains(rec.Body.String(), "(n ≤ 1000)") {
		t.Errorf("the index does not list the caps:\n%s", rec.Body)
	}
}

// TestWeightedStatusAndCPU: /status picks by weight (a zero weight never),
// refuses malformed specs, and /cpu answers the same digest for the same
// n, in both apps.
func TestWeightedStatusAndCPU(t *testing.T) {
	h, fh := targetapp.New(), targetapp.NewFast()
	answer := func(path string) (int, string, int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		var ctx fasthttp.RequestCtx
		ctx.Request.SetRequestURI(path)
		fh(&ctx)
		return rec.Code, rec.Body.String(), ctx.Response.StatusCode(), string(ctx.Response.Body())
	}
	for range 20 {
		if c1, _, c2, _ := answer("/status/500:0,201:2"); c1 != 201 || c2 != 201 {
			t.Fatalf("a zero weight was picked: %d, %d", c1, c2)
		}
	}
	for _, bad := range []string{"/status/200:", "/status/200:-1", "/status/200:0", "/status/99:1", "/status/200:NaN"} {
		if c1, _, c2, _ := answer(bad); c1 != 400 || c2 != 400 {
			t.Errorf("%s: %d, %d, want 400", bad, c1, c2)
		}
	}
	c1, b1, c2, b2 := answer("/cpu/100")
	if c1 != 200 || c2 != 200 || b1 != b2 || len(b1) != 65 {
		t.Errorf("/cpu/100: %d %q, %d %q", c1, b1, c2, b2)
	}
}

// TestGzipAndDrip: /gzip answers gzip only when Accept-Encoding allows
// it, and the same document either way; /drip sends exactly its bytes.
func TestGzipAndDrip(t *testing.T) {
	h := targetapp.New()
	get := func(path, accept string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, path, nil)
		if accept != "" {
			req.Header.Set("Accept-Encoding", accept)
		}
		h.ServeHTTP(rec, req)
		return rec
	}
	plain := get("/gzip", "")
	if plain.Header().Get("Content-Encoding") != "" {
		t.Fatal("gzip without Accept-Encoding")
	}
	for accept, gz := range map[string]bool{"gzip": true, "br, GZIP": true, "gzip;q=0": false, "br": false} {
		rec := get("/gzip", accept)
		if (rec.Header().Get("Content-Encoding") == "gzip") != gz {
			t.Errorf("Accept-Encoding %q: Content-Encoding %q", accept, rec.Header().Get("Content-Encoding"))
			continue
		}
		body := rec.Body.Bytes()
		if gz {
			zr, err := gzip.NewReader(bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			body, _ = io.ReadAll(zr)
		}
		if !bytes.Equal(body, plain.Body.Bytes()) {
			t.Errorf("Accept-Encoding %q: a different document", accept)
		}
	}
	if rec := get("/drip?bytes=123&ms=5", ""); rec.Code != 200 || rec.Body.Len() != 123 || rec.Header().Get("Content-Length") != "123" {
		t.Errorf("/drip: %d, %d bytes, Content-Length %q", rec.Code, rec.Body.Len(), rec.Header().Get("Content-Length"))
	}
}
