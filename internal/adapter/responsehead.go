package adapter

import (
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/waitron/waitron/codec"
)

// The response head: the status line and fields a net/http handler's
// response leaves with, and the trailer after a chunked body.

// appendHead completes the head begun at WriteHeader, deciding the
// framing (RFC 9112 §6.1, §6.3, §9.6) and the persistence of the connection.
func (w *response) appendHead(final bool) []byte {
	b := w.headBuf
	w.headBuf = nil
	if !w.closeAfter && w.cfg.Draining != nil && w.cfg.Draining() {
		w.closeAfter, w.drainClose = true, true
	}
	if !w.closeAfter && w.cfg.NoKeepAlive != nil && w.cfg.NoKeepAlive() {
		w.closeAfter = true
	}
	bodyAllowed := codec.BodyAllowed(w.status)
	trailers, connection, _ := w.trailers()
	var contentLength int64 = -1
	switch {
	case !bodyAllowed:
	case w.declared >= 0:
	case final && len(trailers) == 0 && (!w.isHead || w.written > 0):
		contentLength = w.written
	case w.isHead:
		// No body follows, so no framing it would need (net/http's way):
		// not chunked, and the connection stays open, on HTTP/1.0 too.
	case w.minor >= 1:
		w.chunked = true
	default: // HTTP/1.0 without a length: the end of the body is the close
		w.closeAfter = true
	}
	if contentLength >= 0 {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, contentLength, 10)
		b = append(b, "\r\n"...)
	}
	if bodyAllowed && w.written > 0 && !w.hasContentType {
		sniff := w.pending
		if len(sniff) > 512 {
			sniff = sniff[:512]
		}
		b = codec.AppendField(b, "Content-Type", http.DetectContentType(sniff))
	}
	if w.chunked {
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
		if len(trailers) > 0 {
			b = codec.AppendField(b, "Trailer", strings.Join(trailers, ", "))
		}
	}
	if !w.hasDate && w.cfg.AppendDate != nil {
		b = w.cfg.AppendDate(append(b, "Date: "...))
		b = append(b, "\r\n"...)
	}
	if !w.hasServer && w.cfg.Ident != "" {
		b = codec.AppendField(b, "Server", w.cfg.Ident)
	}
	for _, v := range connection {
		if !hasToken([]string{v}, "close") && !hasToken([]string{v}, "keep-alive") {
			b = codec.AppendField(b, "Connection", v)
		}
	}
	switch {
	case w.closeAfter:
		b = append(b, "Connection: close\r\n"...)
	case w.minor == 0:
		b = append(b, "Connection: keep-alive\r\n"...)
	}
	return append(b, "\r\n"...)
}

// declaredTrailers returns the trailer names the handler announced in the
// Trailer header or by setting http.TrailerPrefix keys (net/http's rules):
// the Trailer values, and the prefixed keys without their prefix.
func declaredTrailers(trailerField, prefixed []string) []string {
	var names []string
	for _, v := range trailerField {
		for _, name := range strings.Split(v, ",") {
			if name = strings.TrimSpace(name); name != "" {
				names = append(names, http.CanonicalHeaderKey(name))
			}
		}
	}
	return append(names, prefixed...)
}

// appendTrailer appends the last chunk and the trailer section.
func (w *response) appendTrailer(b []byte) []byte {
	b = append(b, "0\r\n"...)
	_, _, trailerField := w.trailers()
	for _, v := range trailerField {
		for _, name := range strings.Split(v, ",") {
			name = http.CanonicalHeaderKey(strings.TrimSpace(name))
			for _, val := range w.header[name] {
				b = codec.AppendField(b, name, val)
			}
		}
	}
	for k, vs := range w.header {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
			for _, val := range vs {
				b = codec.AppendField(b, name, val)
			}
		}
	}
	return append(b, "\r\n"...)
}

func hasToken(values []string, token string) bool {
	for _, v := range values {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// appendHeader appends every field of h in key order (so output is
// deterministic, like net/http and waitress), each value on its own line.
func appendHeader(dst []byte, h http.Header) []byte {
	var arr [32]string
	keys := arr[:0]
	for k := range h {
		keys = append(keys, k)
	}
	return appendFields(dst, h, keys)
}

// appendFields appends the fields of h named by keys, sorting keys in place
// first: appendHeader for a caller that has already chosen the keys.
func appendFields(dst []byte, h http.Header, keys []string) []byte {
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range h[k] {
			dst = codec.AppendField(dst, k, v)
		}
	}
	return dst
}
