package codec_test

import (
	"testing"

	"github.com/waitron/waitron/codec"
)

// BenchmarkReadHead parses and frames the heads wrk and a browser send:
// go test ./codec -bench ReadHead.
func BenchmarkReadHead(b *testing.B) {
	for _, c := range []struct{ name, head string }{
		{"wrk", "GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"},
		{"browser", "GET /static/app.js?v=3 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0\r\n" +
			"Accept: */*\r\nAccept-Language: en-GB,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\nReferer: https://example.com/\r\n" +
			"Connection: keep-alive\r\nCookie: session=0123456789abcdef; theme=dark\r\nSec-Fetch-Dest: script\r\n\r\n"},
	} {
		b.Run(c.name, func(b *testing.B) {
			raw := []byte(c.head)
			var h codec.Head
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				h.Reset()
				if n, _, err := codec.ReadHead(raw, &h, 8192, 1<<20); n != len(raw) || err != nil {
					b.Fatal(n, err)
				}
			}
		})
	}
}
