package codec

import (
	"strconv"
	"time"
)

// AppendStatusLine appends "HTTP/1.1 <code> <reason>\r\n". Like net/http the
// server always answers with its own version, HTTP/1.1 (RFC 9110 §6.2), and
// a code without a reason phrase (reason "") gets "status code <code>".
// The caller chooses the phrase (the adapter: net/http's StatusText).
func AppendStatusLine(dst []byte, code int, reason string) []byte {
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(code), 10)
	dst = append(dst, ' ')
	if reason != "" {
		return append(append(dst, reason...), "\r\n"...)
	}
	dst = append(dst, "status code "...)
	dst = strconv.AppendInt(dst, int64(code), 10)
	return append(dst, "\r\n"...)
}

// AppendField appends "name: value\r\n". Control characters in the value
// (CR and LF above all) are replaced by SP so a handler's header can never
// split the response (RFC 9110 §5.5); a name that is not a token is dropped.
func AppendField(dst []byte, name, value string) []byte {
	if !validToken(name) {
		return dst
	}
	dst = append(dst, name...)
	dst = append(dst, ": "...)
	for i := 0; i < len(value); i++ {
		c := value[i]
		if c < ' ' && c != '\t' || c == 0x7f {
			c = ' '
		}
		dst = append(dst, c)
	}
	return append(dst, "\r\n"...)
}

// AppendChunkSize appends the hexadecimal chunk-size line for a chunk of n
// bytes (RFC 9112 §7.1).
func AppendChunkSize(dst []byte, n int) []byte {
	dst = strconv.AppendInt(dst, int64(n), 16)
	return append(dst, "\r\n"...)
}

// imfFixdate is the layout of RFC 9110 §5.6.7's IMF-fixdate (net/http's
// TimeFormat).
const imfFixdate = "Mon, 02 Jan 2006 15:04:05 GMT"

// AppendDate appends t in the IMF-fixdate format of RFC 9110 §5.6.7.
func AppendDate(dst []byte, t time.Time) []byte {
	return t.UTC().AppendFormat(dst, imfFixdate)
}

// BodyAllowed reports whether a response with this status may have content
// (RFC 9110 §6.4.1: not 1xx, 204 or 304).
func BodyAllowed(code int) bool {
	return code >= 200 && code != 204 && code != 304
}

func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTchar[s[i]] {
			return false
		}
	}
	return true
}
