package codec

import "bytes"

// BodyKind says how a request body is delimited (RFC 9112 §6.3).
type BodyKind uint8

const (
	BodyNone    BodyKind = iota // no body: neither Content-Length > 0 nor Transfer-Encoding
	BodyLength                  // Content-Length bytes follow the head
	BodyChunked                 // chunked transfer coding, decoded with ChunkedDecoder
)

// Framing is what the head says about the body and the connection.
type Framing struct {
	Body   BodyKind
	Length int64 // body length for BodyLength
	// Close is true when the connection must close after this request:
	// a "close" token in Connection, or HTTP/1.0 without "keep-alive".
	Close bool
	// Expect100 is true for an HTTP/1.1 request with Expect: 100-continue.
	Expect100 bool
	// Upgrade is true when an Upgrade field was sent (RFC 9110 §7.8): the
	// handler may take the connection over.
	Upgrade bool
	// Host is the Host field value; HasHost says whether one was sent.
	Host    Span
	HasHost bool
}

// maxLengthDigits bounds Content-Length parsing: 18 decimal digits never
// overflow an int64; any longer value is larger than every body limit.
const maxLengthDigits = 18

// Frame decides body framing and persistence for a parsed head and checks
// the fields that decide them. maxBody is max_request_body_size: a
// Content-Length above it is a 413 before any body byte is read.
//
// Rules (RFC 9112 §3.2, §6.1, §6.3, §7, §9.3; RFC 9110 §5.6.1, §7.2,
// §10.1.1): exactly one valid Host on HTTP/1.1 and later 1.x minors (at
// most one on HTTP/1.0); Content-Length is digits only, and repeated
// Content-Length fields must agree; Transfer-Encoding is allowed only on
// HTTP/1.1, never together with Content-Length, and its last coding must be
// "chunked" (case-insensitive), applied once — else the body's length is
// unknown, a 400 — while another coding before it is one not supported, a
// 501; empty list elements are skipped; Connection is a comma-separated
// token list.
func (h *Head) Frame(maxBody int64) (Framing, error) {
	var (
		f              Framing
		hosts          int
		haveCL, haveTE bool
		cl             int64 = -1
		chunked        int   // "chunked" codings seen
		chunkedLast    bool  // the last coding seen is "chunked"
		otherCoding    bool
		keepAlive      bool
	)
	for _, fd := range h.Fields {
		name, value := h.Bytes(fd.Name), h.Bytes(fd.Value)
		switch len(name) {
		case 4:
			if EqualFold(name, "host") {
				hosts++
				f.Host, f.HasHost = fd.Value, true
				if !ValidHost(value) {
					return f, ErrHostInvalid
				}
			}
		case 6:
			if EqualFold(name, "expect") && h.Minor >= 1 && EqualFold(value, "100-continue") {
				f.Expect100 = true
			}
		case 7:
			if EqualFold(name, "upgrade") {
				f.Upgrade = true
			}
		case 10:
			if EqualFold(name, "connection") {
				forEachToken(value, func(tok []byte) {
					if EqualFold(tok, "close") {
						f.Close = true
					} else if EqualFold(tok, "keep-alive") {
						keepAlive = true
					}
				})
			}
		case 14:
			if EqualFold(name, "content-length") {
				n, err := parseContentLength(value)
				if err != nil {
					return f, err
				}
				if haveCL && n != cl {
					return f, ErrContentLengthDup
				}
				haveCL, cl = true, n
			}
		case 17:
			if EqualFold(name, "transfer-encoding") {
				haveTE = true
				// Empty list elements are skipped (RFC 9110 §5.6.1): a
				// front proxy such as HAProxy forwards "chunked," as it
				// came, and frames it as chunked.
				forEachToken(value, func(tok []byte) {
					chunkedLast = EqualFold(tok, "chunked")
					if chunkedLast {
						chunked++
					} else {
						otherCoding = true
					}
				})
			}
		}
	}
	switch {
	case hosts > 1:
		return f, ErrHostDuplicate
	case hosts == 0 && h.Minor >= 1:
		return f, ErrHostMissing
	}
	if haveTE {
		switch {
		case h.Minor == 0:
			return f, ErrTEOnHTTP10
		case haveCL:
			return f, ErrTEAndCL
		case !chunkedLast || chunked != 1:
			return f, ErrTEChunkedNotLast // RFC 9112 §6.3 (4), §7
		case otherCoding:
			return f, ErrTEUnsupported // RFC 9112 §6.1
		}
		f.Body = BodyChunked
	} else if cl > 0 {
		if cl > maxBody {
			return f, ErrBodyTooLarge
		}
		f.Body, f.Length = BodyLength, cl
	}
	if h.Minor == 0 && !keepAlive {
		f.Close = true
	}
	return f, nil
}

// parseContentLength parses 1*DIGIT (RFC 9110 §8.6). Values too long to be
// any accepted length are reported as too large rather than invalid.
func parseContentLength(v []byte) (int64, error) {
	if len(v) == 0 {
		return 0, ErrContentLength
	}
	var n int64
	digits := 0
	for _, c := range v {
		if !isDigit(c) {
			return 0, ErrContentLength
		}
		if digits > 0 || c != '0' {
			digits++
		}
		if digits > maxLengthDigits {
			for _, c := range v {
				if !isDigit(c) {
					return 0, ErrContentLength
				}
			}
			return 0, ErrBodyTooLarge
		}
		n = n*10 + int64(c-'0')
	}
	return n, nil
}

// forEachToken calls fn for each non-empty element of a comma-separated
// list with the optional whitespace around it removed (RFC 9110 §5.6.1).
func forEachToken(v []byte, fn func([]byte)) {
	for len(v) > 0 {
		var tok []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			tok, v = v[:i], v[i+1:]
		} else {
			tok, v = v, nil
		}
		tok = bytes.Trim(tok, " \t")
		if len(tok) > 0 {
			fn(tok)
		}
	}
}
