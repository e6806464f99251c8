package adapter

import (
	"bytes"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
)

type proxyCase struct {
	name    string
	trusted string
	count   int
	headers string
	clear   bool
	peer    net.Addr
	in      http.Header
	// want: RemoteAddr, Host, Scheme, ServerName, ServerPort, then the
	// remaining proxy headers as "Name=value" sorted; or "400 <detail>".
	want string
}

var proxyPeer = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5555}

func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func TestProxyHeaders(t *testing.T) {
	cases := []proxyCase{
		{"waitress example: xff+xfp+xfh", "127.0.0.1", 1, "x-forwarded-for x-forwarded-proto x-forwarded-host", true, proxyPeer,
			hdr("X-Forwarded-For", "1.1.1.1, 2.2.2.2", "X-Forwarded-Proto", "https", "X-Forwarded-Host", "example.com",
				"X-Forwarded-By", "p", "Forwarded", "for=9.9.9.9"),
			"2.2.2.2:5555 example.com https example.com 443 X-Forwarded-For=2.2.2.2 X-Forwarded-Host=example.com X-Forwarded-Proto=https"},
		{"host port beats x-forwarded-port", "127.0.0.1", 1, "x-forwarded-host x-forwarded-port", true, proxyPeer,
			hdr("X-Forwarded-Host", "example.com:8443", "X-Forwarded-Port", "9000"),
			"127.0.0.1:5555 example.com:8443 http example.com 8443 X-Forwarded-Host=example.com:8443 X-Forwarded-Port=9000"},
		{"port 80 under https stays in Host", "127.0.0.1", 1, "x-forwarded-proto x-forwarded-host x-forwarded-port", true, proxyPeer,
			hdr("X-Forwarded-Proto", "https", "X-Forwarded-Host", "example.com", "X-Forwarded-Port", "80"),
			"127.0.0.1:5555 example.com:80 https example.com 80 X-Forwarded-Host=example.com X-Forwarded-Port=80 X-Forwarded-Proto=https"},
		{"waitress example: Forwarded, count 2", "127.0.0.1", 2, "forwarded", true, proxyPeer,
			hdr("Forwarded", `for=1.1.1.1;host=a.com;proto=https, for="[2001:db8::2]:99";host=b.com:8080, for=3.3.3.3`,
				"X-Forwarded-For", "6.6.6.6"),
			`[2001:db8::2]:99 b.com:8080 http b.com 8080 Forwarded=for="[2001:db8::2]:99";host=b.com:8080, for=3.3.3.3`},
		{"xff trusted hops only, bare IPv6 hop", "*", 2, "x-forwarded-for", true, proxyPeer,
			hdr("X-Forwarded-For", "6.6.6.6, 2001:db8::7, 10.0.0.1"),
			"[2001:db8::7]:5555 orig http srv 80 X-Forwarded-For=2001:db8::7, 10.0.0.1"},
		{"xff with port", "*", 1, "x-forwarded-for", true, proxyPeer,
			hdr("X-Forwarded-For", "203.0.113.9:4711"),
			"203.0.113.9:4711 orig http srv 80 X-Forwarded-For=203.0.113.9:4711"},
		{"count beyond the chain", "*", 5, "x-forwarded-for", true, proxyPeer,
			hdr("X-Forwarded-For", "1.2.3.4, 5.6.7.8"),
			"1.2.3.4:5555 orig http srv 80 X-Forwarded-For=1.2.3.4, 5.6.7.8"},
		{"untrusted peer: all removed", "10.0.0.1", 1, "x-forwarded-for", true, proxyPeer,
			hdr("X-Forwarded-For", "1.1.1.1", "Forwarded", "for=2.2.2.2", "X-Forwarded-By", "x"),
			"127.0.0.1:5555 orig http srv 80"},
		{"no trusted_proxy, clearing on by default", "", 1, "", true, proxyPeer,
			hdr("X-Forwarded-Proto", "https", "X-Forwarded-Port", "1"),
			"127.0.0.1:5555 orig http srv 80"},
		{"clearing off keeps untrusted headers", "", 1, "", false, proxyPeer,
			hdr("X-Forwarded-Proto", "https"),
			"127.0.0.1:5555 orig http srv 80 X-Forwarded-Proto=https"},
		{"CIDR list", "10.0.0.0/8, 127.0.0.0/8", 1, "x-forwarded-proto", true, proxyPeer,
			hdr("X-Forwarded-Proto", "HTTPS"),
			"127.0.0.1:5555 orig https srv 443 X-Forwarded-Proto=HTTPS"},
		{"trusted proxy without headers trusts x-forwarded-proto only", "127.0.0.1", 1, "", true, proxyPeer,
			hdr("X-Forwarded-Proto", "https", "X-Forwarded-For", "1.1.1.1"),
			"127.0.0.1:5555 orig https srv 443 X-Forwarded-Proto=https"},
		{"unix peer as localhost", "localhost", 1, "x-forwarded-for", true, &net.UnixAddr{Name: "@", Net: "unix"},
			hdr("X-Forwarded-For", "198.51.100.1"),
			"198.51.100.1: orig http srv 80 X-Forwarded-For=198.51.100.1"},
		{"quoted value", "*", 1, "x-forwarded-host", true, proxyPeer,
			hdr("X-Forwarded-Host", `"quoted.example"`),
			`127.0.0.1:5555 quoted.example http quoted.example 80 X-Forwarded-Host="quoted.example"`},
		{"unsupported proto", "*", 1, "x-forwarded-proto", true, proxyPeer,
			hdr("X-Forwarded-Proto", "ftp"), `400 Header "X-Forwarded-Proto" malformed.`},
		{"two protos", "*", 1, "x-forwarded-proto", true, proxyPeer,
			hdr("X-Forwarded-Proto", "http,https"), `400 Header "X-Forwarded-Proto" malformed.`},
		{"half-quoted hop", "*", 1, "x-forwarded-for", true, proxyPeer,
			hdr("X-Forwarded-For", `"1.1.1.1`), `400 Header "X-Forwarded-For" malformed.`},
		{"forwarded pair without =", "*", 1, "forwarded", true, proxyPeer,
			hdr("Forwarded", "for"), `400 Header "Forwarded" malformed.`},
		{"forwarded value with whitespace", "*", 1, "forwarded", true, proxyPeer,
			hdr("Forwarded", "for= 1.1.1.1"), `400 Header "Forwarded" malformed.`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewProxy(tc.trusted, tc.count, strings.Fields(tc.headers), tc.clear, false)
			if err != nil {
				t.Fatal(err)
			}
			r := &http.Request{Header: tc.in.Clone(), Host: "orig", RemoteAddr: "127.0.0.1:5555"}
			if _, ok := tc.peer.(*net.UnixAddr); ok {
				r.RemoteAddr = "@"
			}
			info := &Info{Scheme: "http", ServerName: "srv", ServerPort: "80", PeerAddr: r.RemoteAddr}
			var logs bytes.Buffer
			err = p.Apply(r, info, tc.peer, slog.New(slog.NewTextHandler(&logs, nil)))
			var got string
			if err != nil {
				got = "400 " + err.Error()
			} else {
				parts := []string{r.RemoteAddr, r.Host, info.Scheme, info.ServerName, info.ServerPort}
				for _, h := range []string{"Forwarded", "X-Forwarded-By", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Port", "X-Forwarded-Proto"} {
					if v, ok := r.Header[h]; ok {
						parts = append(parts, h+"="+strings.Join(v, "|"))
					}
				}
				got = strings.Join(parts, " ")
			}
			if got != tc.want {
				t.Fatalf("\n got: %s\nwant: %s\nlogs: %s", got, tc.want, logs.String())
			}
		})
	}
}

func TestLogUntrustedProxyHeaders(t *testing.T) {
	p, _ := NewProxy("", 1, nil, true, true)
	r := &http.Request{Header: hdr("X-Forwarded-For", "1.1.1.1", "Forwarded", "for=x"), RemoteAddr: "127.0.0.1:1"}
	var logs bytes.Buffer
	p.Apply(r, &Info{}, proxyPeer, slog.New(slog.NewTextHandler(&logs, nil)))
	if !strings.Contains(logs.String(), "Removed untrusted headers (X-Forwarded-For, Forwarded)") {
		t.Fatalf("log: %s", logs.String())
	}
}

func TestUndquote(t *testing.T) {
	for in, want := range map[string]string{`abc`: "abc", `"a\"b"`: `a"b`, `""`: "", `"a b"`: "a b"} {
		if got, err := undquote(in); err != nil || got != want {
			t.Errorf("undquote(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{`"`, `"abc`, `abc"`, `"a"b"`, "\"a\x01\""} {
		if _, err := undquote(in); err == nil {
			t.Errorf("undquote(%q) accepted", in)
		}
	}
}
