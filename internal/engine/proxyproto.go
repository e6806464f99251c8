package engine

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"net"

	"github.com/pires/go-proxyproto"
)

// The PROXY protocol (proxy_protocol): a load balancer (HAProxy's
// send-proxy and send-proxy-v2, AWS NLB, nginx's proxy_protocol) sends,
// before anything else on the connection, a header naming the client it
// relays. It is looked for at the start of a connection, on the event
// loop, in the bytes already read (never a blocking read); once complete
// it is parsed with pires/go-proxyproto. Only a trusted_proxy peer may
// send one; from any other it is a protocol error.

// maxProxyV2 bounds a version 2 header (the 16-byte preamble and its
// addresses and TLVs); version 1 is at most 107 bytes by its spec.
const (
	maxProxyV1 = 107
	maxProxyV2 = 16 + 2048
)

var (
	errProxyTooLong   = errors.New("PROXY protocol header too long")
	errProxyUntrusted = errors.New("PROXY protocol header from a peer not in trusted_proxy")
)

// proxyHeaderLen reports whether in starts with a PROXY protocol header
// and its length: present with n == 0 means it is still incomplete.
func proxyHeaderLen(in []byte) (n int, present bool, err error) {
	v1 := []byte("PROXY ")
	switch {
	case startsLike(in, v1):
		if len(in) < len(v1) {
			return 0, true, nil
		}
		if i := bytes.Index(in[:min(len(in), maxProxyV1)], []byte("\r\n")); i >= 0 {
			return i + 2, true, nil
		}
		if len(in) >= maxProxyV1 {
			return 0, true, errProxyTooLong
		}
		return 0, true, nil
	case startsLike(in, proxyproto.SIGV2):
		if len(in) < 16 {
			return 0, true, nil
		}
		total := 16 + int(binary.BigEndian.Uint16(in[14:16]))
		if total > maxProxyV2 {
			return 0, true, errProxyTooLong
		}
		if len(in) < total {
			return 0, true, nil
		}
		return total, true, nil
	}
	return 0, false, nil
}

// startsLike reports whether in and sig agree on their common length.
func startsLike(in, sig []byte) bool {
	k := min(len(in), len(sig))
	return k > 0 && bytes.Equal(in[:k], sig[:k])
}

// parseProxyHeader parses hdr, a complete PROXY protocol header from
// peer, and returns the client it names (nil for UNKNOWN and LOCAL: the
// peer stays), or why it is refused: the peer is not in trusted_proxy, or
// the header does not parse. Any goroutine.
func (e *env) parseProxyHeader(hdr []byte, peer net.Addr) (net.Addr, error) {
	if e.acfg.Proxy == nil || !e.acfg.Proxy.Trusts(peer) {
		return nil, errProxyUntrusted
	}
	h, err := proxyproto.Read(bufio.NewReaderSize(bytes.NewReader(hdr), max(16, len(hdr))))
	if err != nil {
		return nil, err
	}
	if h.Command == proxyproto.PROXY && h.SourceAddr != nil {
		return h.SourceAddr, nil
	}
	return nil, nil
}

// readProxyPrefix reads a PROXY protocol header, if one comes, from the
// start of nc, a TLS listener's connection before its handshake (on the
// handshake's goroutine, under its deadline): it returns the client the
// header names (nil: none, or UNKNOWN/LOCAL), and the bytes read past the
// header, which are the handshake's. An error closes the connection, as
// readProxyHeader's do.
func (s *Server) readProxyPrefix(nc net.Conn) (remote net.Addr, rest []byte, err error) {
	buf := make([]byte, 0, 512)
	for {
		n, present, perr := proxyHeaderLen(buf)
		switch {
		case perr != nil:
			return nil, nil, perr
		case !present && len(buf) > 0:
			return nil, buf, nil // no header: TLS from the first byte
		case present && n > 0:
			remote, err := s.parseProxyHeader(buf[:n], nc.RemoteAddr())
			if err != nil {
				return nil, nil, err
			}
			return remote, buf[n:], nil
		}
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)] // grow: a v2 header may be up to maxProxyV2
		}
		k, err := nc.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+k]
		if err != nil && k == 0 {
			return nil, nil, err
		}
	}
}

// readProxyHeader handles a PROXY header at the start of the connection's
// input. It reports false when the caller must wait for more input or the
// connection was closed. Loop only.
func (c *conn) readProxyHeader(in []byte) bool {
	n, present, err := proxyHeaderLen(in)
	switch {
	case err == nil && !present:
		c.proxied = true // none: plain HTTP
		return true
	case err == nil && n == 0:
		return false // incomplete: the head timeout bounds the wait
	}
	if err == nil {
		var a net.Addr
		if a, err = c.e.parseProxyHeader(in[:n], c.remote); err == nil {
			c.proxied = true
			c.consume(n)
			if a != nil {
				c.remote, c.w.remoteStr = a, a.String()
			}
			return true
		}
	}
	c.e.log.Warn("closing connection: "+err.Error(), "remote", c.w.remoteStr)
	c.close(CloseProxyProtocol, err.Error())
	return false
}
