package engine_test

import (
	"fmt"
	"github.com/waitron/waitron/internal/testutil"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// trailerCases are chunked requests whose trailer section names a field
// that frames, routes, authorises or modifies the request, or one the
// trusted-proxy rules read: each forbidden name (fasthttp's own list and
// RFC 9110 §6.5.1's), in mixed case, repeated, with an empty value and
// with values the head parser would refuse; then trailers a handler may
// see, and Trailer announcements.
var trailerCases = func() map[string]string {
	req := func(head, trailer string) string {
		return "POST /x HTTP/1.1\r\nHost: good.example\r\nTransfer-Encoding: chunked\r\n" + head +
			"Connection: close\r\n\r\n3\r\nabc\r\n0\r\n" + trailer + "\r\n"
	}
	cases := map[string]string{
		"allowed":            req("", "X-Sum: 9\r\n"),
		"allowed repeated":   req("", "X-Sum: 1\r\nx-sum: 2\r\n"),
		"allowed empty":      req("", "X-Empty:\r\n"),
		"head name repeated": req("X-Sum: 1\r\n", "X-Sum: 2\r\n"),
		"referer":            req("Referer: r\r\n", "Referer: evil\r\n"),
		"user-agent":         req("User-Agent: u\r\n", "User-Agent: evil\r\n"),
		"announced":          req("Trailer: X-Sum, X-Other\r\n", "X-Sum: 9\r\n"),
		"announced host":     req("Trailer: Host\r\n", ""),
		"announced length":   req("Trailer: Content-Length\r\n", ""),
		"announced te":       req("Trailer: X-Sum, transfer-encoding\r\n", "X-Sum: 1\r\n"),
		"announced trailer":  req("Trailer: Trailer\r\n", ""),
		"host a b":           req("", "Host: a b\r\n"),
		"host path":          req("", "Host: evil/../admin\r\n"),
		"host empty":         req("", "Host:\r\n"),
		"host mixed case":    req("", "hOsT: evil.example\r\n"),
		"host repeated":      req("", "Host: evil.example\r\nHost: evil2.example\r\n"),
		"multipart":          req("", "Content-Type: multipart/form-data; boundary=z\r\n"),
	}
	for _, name := range []string{"Content-Length", "Content-Encoding", "Content-Range", "Content-MD5",
		"Transfer-Encoding", "Connection", "Keep-Alive", "Upgrade", "TE", "Trailer", "Authorization",
		"Proxy-Authorization", "Cookie", "Set-Cookie", "Expect", "Range", "If-None-Match", "Max-Forwards",
		"Forwarded", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Real-IP", "Cache-Control"} {
		cases["forbidden "+name] = req("", name+": x\r\n")
		cases["forbidden upper "+name] = req("", strings.ToUpper(name)+": x\r\n")
	}
	return cases
}()

// statusLine returns the first line of a response.
func statusLine(resp string) string {
	line, _, _ := strings.Cut(resp, "\r\n")
	return line
}

// TestTrailersFastLikeFasthttp: a fasthttp handler sees a chunked
// request's trailer exactly as on fasthttp's own server (Peek finds a
// trailer field where the head has none; the head's fields, Host, the
// content type, Connection and the cookies stay the head's), or the
// request is refused with fasthttp's status, 400. waitron refuses more
// than fasthttp's list: the RFC 9110 §6.5.1 fields fasthttp lacks
// (Content-*, conditionals, controls, Forwarded) and a name the head has
// (fasthttp's PeekAll would list both).
func TestTrailersFastLikeFasthttp(t *testing.T) {
	probe := []string{"Host", "Content-Type", "Cookie", "Referer", "User-Agent", "X-Sum", "X-Other", "X-Empty",
		"Authorization", "Forwarded", "X-Forwarded-For", "Content-Length", "Transfer-Encoding", "Connection",
		"If-None-Match", "Range", "Expect", "Trailer"}
	h := func(ctx *fasthttp.RequestCtx) {
		hd := &ctx.Request.Header
		fmt.Fprintf(ctx, "host=%s type=%s close=%v length=%d body=%q\n", ctx.Host(), hd.ContentType(),
			hd.ConnectionClose(), hd.ContentLength(), ctx.PostBody())
		for k, v := range hd.All() {
			fmt.Fprintf(ctx, "%s: %s\n", k, v)
		}
		for _, n := range probe {
			fmt.Fprintf(ctx, "peek %s=%q all=%q\n", n, hd.Peek(n), hd.PeekAll(n))
		}
		for k := range hd.Trailers() {
			fmt.Fprintf(ctx, "trailer %s\n", k)
		}
	}
	w, ref := startFast(t, h), testutil.FastPeer(t, h)
	// Refused by waitron although fasthttp's own server shows them.
	beyond := []string{"head name repeated", "referer", "user-agent", "forbidden Content-Range",
		"forbidden Content-MD5", "forbidden Keep-Alive", "forbidden Upgrade", "forbidden If-None-Match",
		"forbidden Forwarded", "forbidden Cache-Control", "forbidden Range"}
	for name, raw := range trailerCases {
		got, want := roundTrip(t, w.addr, raw), roundTrip(t, ref, raw)
		upper, isUpper := strings.CutPrefix(name, "forbidden upper ")
		switch {
		case slices.Contains(beyond, name) || isUpper && slices.Contains(beyond, "forbidden "+upper):
			if statusLine(got) != "HTTP/1.1 400 Bad Request" {
				t.Errorf("%s: waitron answered %q; want 400", name, statusLine(got))
			}
		case !strings.HasPrefix(want, "HTTP/1.1 200 "):
			if statusLine(got) != statusLine(want) {
				t.Errorf("%s: waitron answered %q, fasthttp %q", name, statusLine(got), statusLine(want))
			}
		case got != want:
			t.Errorf("%s: waitron\n%s\nfasthttp\n%s", name, got, want)
		}
	}
}

// TestTrailersNetHTTPLikeNetHTTP: a net/http handler sees a chunked
// request's trailer fields in r.Trailer only, as on net/http's own server:
// r.Header and r.Host are the head's; a Trailer field leaves r.Header and
// pre-creates its keys in r.Trailer; announcing Transfer-Encoding, Trailer
// or Content-Length is a 400.
func TestTrailersNetHTTPLikeNetHTTP(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "host=%s body=%q len=%d te=%q\n", r.Host, b, r.ContentLength, r.TransferEncoding)
		for _, m := range []http.Header{r.Header, r.Trailer} {
			keys := slices.Sorted(func(yield func(string) bool) {
				for k := range m {
					if !yield(k) {
						return
					}
				}
			})
			for _, k := range keys {
				fmt.Fprintf(w, "%s: %q\n", k, m[k])
			}
			fmt.Fprintln(w, "--")
		}
	})
	w := start(t, h)
	std := httptest.NewServer(h)
	t.Cleanup(std.Close)
	stdAddr := strings.TrimPrefix(std.URL, "http://")
	for name, raw := range trailerCases {
		got, want := roundTrip(t, w.addr, raw), roundTrip(t, stdAddr, raw)
		if !strings.HasPrefix(want, "HTTP/1.1 200 ") {
			if statusLine(got) != statusLine(want) {
				t.Errorf("%s: waitron answered %q, net/http %q", name, statusLine(got), statusLine(want))
			}
			continue
		}
		_, gotBody, _ := strings.Cut(got, "\r\n\r\n")
		_, wantBody, _ := strings.Cut(want, "\r\n\r\n")
		if statusLine(got) != statusLine(want) || gotBody != wantBody {
			t.Errorf("%s: waitron\n%s\nnet/http\n%s", name, got, want)
		}
	}
}

// TestTrailerCannotReAddProxyFields: behind a trusted proxy, with the
// untrusted proxy fields cleared (the default), a trailer cannot put back
// what the rules removed: the fasthttp adapter refuses the request, and a
// net/http handler finds the value only in r.Trailer, as net/http would
// give it.
func TestTrailerCannotReAddProxyFields(t *testing.T) {
	set := []string{"trusted_proxy", "127.0.0.1", "trusted_proxy_headers", "x-forwarded-for"}
	raw := "POST /request HTTP/1.1\r\nHost: a\r\nX-Forwarded-Host: evil\r\nTransfer-Encoding: chunked\r\n" +
		"Connection: close\r\n\r\n0\r\nX-Forwarded-Host: evil\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n"
	fw := startFast(t, func(ctx *fasthttp.RequestCtx) {
		fmt.Fprintf(ctx, "%q %q %s", ctx.Request.Header.Peek("X-Forwarded-Host"), ctx.Request.Header.Peek("X-Forwarded-For"), ctx.RemoteIP())
	}, set...)
	if got := roundTrip(t, fw.addr, raw); statusLine(got) != "HTTP/1.1 400 Bad Request" {
		t.Errorf("fasthttp adapter: %q", got)
	}
	sw := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "head=%q trailer=%q remote=%s", r.Header.Values("X-Forwarded-Host"), r.Trailer.Values("X-Forwarded-Host"), r.RemoteAddr)
	}), set...)
	got := roundTrip(t, sw.addr, raw)
	if _, body, _ := strings.Cut(got, "\r\n\r\n"); !strings.HasPrefix(body, `head=[] trailer=["evil"] remote=127.0.0.1:`) {
		t.Errorf("net/http adapter: %q", got)
	}
}
