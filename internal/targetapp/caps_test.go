package targetapp_test

import (
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
