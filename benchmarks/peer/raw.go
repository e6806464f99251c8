package main

import (
	"bytes"

	"github.com/panjf2000/gnet/v2"
)

// rawServer is the ceiling: gnet with a fixed answer per request and no
// HTTP machinery beyond finding where each request ends. It answers every
// request read in one event with one write, echoes a POST body back, and
// closes after a request that asked for it. It is not an HTTP server.
type rawServer struct {
	gnet.BuiltinEventEngine
}

var (
	rawPlain = []byte("HTTP/1.1 200 OK\r\nServer: gnet\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!")
	rawJSON  = []byte("HTTP/1.1 200 OK\r\nServer: gnet\r\nContent-Type: application/json\r\nContent-Length: 27\r\n\r\n{\"message\":\"Hello, World!\"}")
	rawClose = []byte("HTTP/1.1 200 OK\r\nServer: gnet\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!")
	endHead  = []byte("\r\n\r\n")
)

func (*rawServer) OnTraffic(c gnet.Conn) gnet.Action {
	if need, ok := c.Context().(int); ok && c.InboundBuffered() < need {
		return gnet.None // the rest of a body is still to come
	}
	c.SetContext(nil)
	in, _ := c.Peek(-1)
	var out []byte
	used, closeAfter := 0, false
	for !closeAfter {
		rest := in[used:]
		i := bytes.Index(rest, endHead)
		if i < 0 {
			break
		}
		head := rest[:i+4]
		n := headerInt(head, "\ncontent-length:")
		if len(rest)-len(head) < n {
			c.SetContext(used + len(head) + n)
			break
		}
		switch {
		case n > 0:
			out = append(out, "HTTP/1.1 200 OK\r\nServer: gnet\r\nContent-Type: application/octet-stream\r\nContent-Length: "...)
			out = appendInt(out, n)
			out = append(out, "\r\n\r\n"...)
			out = append(out, rest[len(head):len(head)+n]...)
		case bytes.Contains(bytes.ToLower(head), []byte("\nconnection: close")):
			out, closeAfter = append(out, rawClose...), true
		case bytes.HasPrefix(head, []byte("GET /json ")):
			out = append(out, rawJSON...)
		default:
			out = append(out, rawPlain...)
		}
		used += len(head) + n
	}
	if len(out) > 0 {
		_, _ = c.Write(out)
	}
	if used > 0 { // Discard(0) would drop everything
		_, _ = c.Discard(used)
	}
	if closeAfter {
		return gnet.Close
	}
	return gnet.None
}

// headerInt returns the decimal value of the field whose lower-cased
// "\nname:" is given, or 0.
func headerInt(head []byte, name string) int {
	i := bytes.Index(bytes.ToLower(head), []byte(name))
	if i < 0 {
		return 0
	}
	n := 0
	for _, ch := range head[i+len(name):] {
		switch {
		case ch == ' ' || ch == '\t':
		case ch >= '0' && ch <= '9':
			n = n*10 + int(ch-'0')
		default:
			return n
		}
	}
	return n
}

func appendInt(b []byte, n int) []byte {
	var d [20]byte
	i := len(d)
	for {
		i--
		d[i] = byte('0' + n%10)
		if n /= 10; n == 0 {
			break
		}
	}
	return append(b, d[i:]...)
}

func serveRaw(addr string) error {
	return gnet.Run(&rawServer{}, "tcp://"+addr, gnet.WithMulticore(true), gnet.WithReusePort(false))
}
