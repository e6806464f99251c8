// Package codec frames and parses HTTP/1.x requests and encodes response
// heads. It performs no I/O, holds no locks and uses only the standard
// library, not net/http (its header maps and status texts are the
// adapter's): every entry point takes bytes and returns how many it
// consumed, or, for a connection's stream, a Reader's explicit steps.
// Running out of input is never an error; it is reported as "partial"
// (zero bytes consumed and a nil error) so the caller can wait for more.
package codec

import "strconv"

// Error is a protocol error found while reading a request. It carries the
// HTTP status the server must answer with; Detail is a constant text with no
// bytes of the request in it, so it is safe to send and to log.
type Error struct {
	Status int
	Detail string
}

func (e *Error) Error() string { return strconv.Itoa(e.Status) + " " + e.Detail }

func newErr(status int, detail string) *Error { return &Error{Status: status, Detail: detail} }

// The errors a request can produce. Each is a distinct value so tests and
// logs can name the exact reason.
var (
	ErrStartLine          = newErr(400, "Start line is invalid")
	ErrMethod             = newErr(400, "Method is not a token")
	ErrTarget             = newErr(400, "Request-target is invalid")
	ErrBareCRLF           = newErr(400, "Bare CR or LF found in HTTP message")
	ErrObsFold            = newErr(400, "Obsolete line folding is not accepted")
	ErrHeaderName         = newErr(400, "Invalid header field name")
	ErrHeaderValue        = newErr(400, "Invalid header field value")
	ErrNoColon            = newErr(400, "Header line has no colon")
	ErrSpaceBeforeColon   = newErr(400, "Whitespace between header name and colon")
	ErrHostMissing        = newErr(400, "Host header is missing")
	ErrHostDuplicate      = newErr(400, "Duplicate header: Host")
	ErrHostInvalid        = newErr(400, "Host header is invalid")
	ErrContentLength      = newErr(400, "Content-Length is invalid")
	ErrContentLengthDup   = newErr(400, "Duplicate Content-Length headers differ")
	ErrTEAndCL            = newErr(400, "Transfer-Encoding and Content-Length together")
	ErrTEOnHTTP10         = newErr(400, "Transfer-Encoding on an HTTP/1.0 request")
	ErrTEChunkedNotLast   = newErr(400, "Transfer-Encoding does not end in chunked, once")
	ErrTEUnsupported      = newErr(501, "Transfer-Encoding requested is not supported.")
	ErrChunkSize          = newErr(400, "Invalid chunk size")
	ErrChunkExtension     = newErr(400, "Invalid chunk extension")
	ErrChunkTerminator    = newErr(400, "Chunk not properly terminated")
	ErrChunkLineTooLong   = newErr(400, "Chunk size line too long")
	ErrTrailer            = newErr(400, "Invalid trailer field")
	ErrHeaderTooLarge     = newErr(431, "Request header fields exceed max_request_header_size")
	ErrTrailerTooLarge    = newErr(431, "Trailer fields exceed max_request_header_size")
	ErrBodyTooLarge       = newErr(413, "Request body exceeds max_request_body_size")
	ErrVersion            = newErr(505, "Only HTTP/1.0 and HTTP/1.1 are supported")
	ErrConnectNeedsAuthor = newErr(400, "CONNECT needs an authority-form target")
)
