package adapter

import (
	"net/textproto"
	"strings"
	"testing"
)

// canonicalNames are field names as clients send them: canonical (Go,
// curl, browsers over HTTP/1.1), lower case (HAProxy's HTX, HTTP/2
// gateways), upper case, and names outside the common set.
var canonicalNames = []string{
	"Host", "host", "HOST", "User-Agent", "user-agent", "USER-AGENT", "accept", "Accept-Encoding",
	"x-forwarded-for", "X-Real-IP", "content-length", "Sec-Fetch-Site", "upgrade-insecure-requests",
	"X-Custom-Header", "x-custom-header", "a", "-", "x--y", "Te", "TE", "dnt",
	strings.Repeat("long-name-", 4), "Bad Name", "under_score",
}

// TestCanonicalKey checks that a field name gets the key net/http's
// reader gives it, and that a common name costs no allocation.
func TestCanonicalKey(t *testing.T) {
	for _, n := range canonicalNames {
		want := textproto.CanonicalMIMEHeaderKey(n)
		if got := canonicalKey([]byte(n), n); got != want {
			t.Errorf("canonicalKey(%q) = %q, net/textproto gives %q", n, got, want)
		}
	}
	for _, n := range []string{"host", "User-Agent", "x-forwarded-proto", "ACCEPT-LANGUAGE"} {
		b := []byte(n)
		if a := testing.AllocsPerRun(100, func() { _ = canonicalKey(b, n) }); a != 0 {
			t.Errorf("canonicalKey(%q) allocates %v times", n, a)
		}
	}
}

var sinkKey string

func BenchmarkCanonicalKey(b *testing.B) {
	names := make([][]byte, len(canonicalNames))
	for i, n := range canonicalNames {
		names[i] = []byte(n)
	}
	for i := 0; i < b.N; i++ {
		k := i % len(names)
		sinkKey = canonicalKey(names[k], canonicalNames[k])
	}
}
