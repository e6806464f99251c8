package codec

import "bytes"

// Span locates a piece of a request head: Off bytes from the start of the
// buffer given to ParseHead (or to Rebase), Len bytes long. Heads are stored
// as spans so the read buffer can be released once the head is copied.
type Span struct{ Off, Len int32 }

// Field is one header field line: its name as sent and its value with the
// surrounding optional whitespace removed (RFC 9112 §5).
type Field struct{ Name, Value Span }

// Head is a parsed request line and header section. The caller owns it and
// reuses it across requests (Reset), so parsing a typical head allocates
// nothing. Byte accessors return slices of the buffer the spans refer to;
// they stay valid while that buffer does.
type Head struct {
	buf    []byte
	Method Span
	Target Span
	// Minor is the version's minor digit: 0 for HTTP/1.0, 1 for HTTP/1.1,
	// and 2-9 for a later 1.x, which is served as HTTP/1.1 (RFC 9110
	// §2.5); the major version is always 1.
	Minor  int
	Fields []Field
	Len    int // bytes of the head, leading empty lines and final CRLF included
	// RequestLine says the request line parsed: Method, Target and Minor
	// hold it even when a later part of the head was refused.
	RequestLine bool

	scan int // where the search for the end of the head resumes
}

// Reset prepares h for the next request, keeping the capacity of Fields.
func (h *Head) Reset() {
	fields := h.Fields[:0]
	*h = Head{Fields: fields}
}

// Rebase makes the spans of h refer to b, which must hold a copy of the
// h.Len bytes the head was parsed from.
func (h *Head) Rebase(b []byte) { h.buf = b }

// Raw returns the buffer the spans refer to (the head as given to
// ParseHead or Rebase).
func (h *Head) Raw() []byte { return h.buf }

// Bytes returns the bytes s refers to.
func (h *Head) Bytes(s Span) []byte { return h.buf[s.Off : s.Off+s.Len] }

// MethodBytes returns the request method.
func (h *Head) MethodBytes() []byte { return h.Bytes(h.Method) }

// IsHEAD reports whether the method parsed is HEAD, whose response never
// has a body (RFC 9110 §9.3.2), even if the request line was refused after
// it (an unsupported version, a bad target).
func (h *Head) IsHEAD() bool { return string(h.MethodBytes()) == "HEAD" }

// TargetBytes returns the request-target exactly as sent.
func (h *Head) TargetBytes() []byte { return h.Bytes(h.Target) }

// ParseHead parses the request head at the start of b into h, which must be
// fresh or Reset. It returns the head's length once the whole head
// (terminated by CRLF CRLF) is in b, or 0 and a nil error while it is still
// partial. A head longer than max bytes — or partial input already that long —
// is a 431, so the limit holds however the head is split across reads. Calls
// with growing b for the same request resume the search where the previous
// call stopped, so trickled input is scanned in linear time.
//
// Grammar (RFC 9112 §2.2, §3, §5): empty lines before the request line are
// skipped; lines end in CRLF only (a bare CR or LF is a 400); obs-fold is
// rejected; field names are tokens followed directly by a colon; field values
// are visible ASCII, obs-text, SP and HTAB.
func ParseHead(b []byte, h *Head, max int) (int, error) {
	start := 0
	for start+1 < len(b) && b[start] == '\r' && b[start+1] == '\n' {
		start += 2
	}
	if start < len(b) && b[start] == '\n' {
		return 0, ErrBareCRLF
	}
	scan := h.scan
	if scan < start {
		scan = start
	}
	end := -1
	for end < 0 {
		j := bytes.IndexByte(b[scan:], '\n')
		if j < 0 {
			h.scan = len(b)
			if len(b) >= max {
				h.noteMethod(b, start)
				return 0, ErrHeaderTooLarge
			}
			return 0, nil
		}
		p := scan + j
		if b[p-1] != '\r' { // p > start, so p-1 is in b
			return 0, ErrBareCRLF
		}
		if p-3 >= start && b[p-3] == '\r' && b[p-2] == '\n' {
			end = p + 1
		}
		scan = p + 1
	}
	if end > max {
		h.noteMethod(b, start)
		return 0, ErrHeaderTooLarge
	}
	h.buf = b
	h.Len = end
	if err := h.parse(b, start, end-2); err != nil {
		return 0, err
	}
	return end, nil
}

// noteMethod records the method at b[start:] of a head refused unparsed
// (too large), so that IsHEAD can say its answer has no body.
func (h *Head) noteMethod(b []byte, start int) {
	i := start
	for i < len(b) && isTchar[b[i]] {
		i++
	}
	if i > start && i < len(b) && b[i] == ' ' {
		h.buf, h.Method = b, Span{int32(start), int32(i - start)}
	}
}

// parse reads the request line and fields in b[start:stop]; stop is the
// offset of the CRLF that ends the head.
func (h *Head) parse(b []byte, start, stop int) error {
	i, err := h.parseRequestLine(b, start)
	if err != nil {
		return err
	}
	h.RequestLine = true
	for i < stop {
		var f Field
		f, i, err = parseField(b, i)
		if err != nil {
			return err
		}
		h.Fields = append(h.Fields, f)
	}
	return nil
}

// parseRequestLine reads "method SP request-target SP HTTP-version CRLF"
// (RFC 9112 §3) and returns the offset of the next line.
func (h *Head) parseRequestLine(b []byte, i int) (int, error) {
	m := i
	for isTchar[b[i]] {
		i++
	}
	if i == m || b[i] != ' ' {
		if i > m && b[i] > ' ' && b[i] < 0x7f {
			return 0, ErrMethod // a non-token character inside the method
		}
		return 0, ErrStartLine
	}
	h.Method = Span{int32(m), int32(i - m)}
	i++
	t := i
	for isTargetChar[b[i]] {
		i++
	}
	if i == t {
		return 0, ErrStartLine
	}
	if b[i] != ' ' {
		if b[i] == '\r' {
			return 0, ErrStartLine // no version: HTTP/0.9 is not served
		}
		return 0, ErrTarget
	}
	h.Target = Span{int32(t), int32(i - t)}
	i++
	// HTTP-version = "HTTP/" DIGIT "." DIGIT, then CRLF.
	v := b[i:]
	if len(v) < 10 || string(v[:5]) != "HTTP/" || !isDigit(v[5]) || v[6] != '.' || !isDigit(v[7]) ||
		v[8] != '\r' || v[9] != '\n' {
		return 0, ErrStartLine
	}
	if v[5] != '1' {
		return 0, ErrVersion
	}
	h.Minor = int(v[7] - '0')
	if err := h.checkTarget(b); err != nil {
		return 0, err
	}
	return i + 10, nil
}

// checkTarget validates the request-target form (RFC 9112 §3.2): origin-form
// for every method but CONNECT (authority-form) and OPTIONS (which may also
// use the asterisk-form); absolute-form for any method. Percent-encodings
// must be complete.
func (h *Head) checkTarget(b []byte) error {
	t := h.Bytes(h.Target)
	if !validPercent(t) {
		return ErrTarget
	}
	method := h.Bytes(h.Method)
	if string(method) == "CONNECT" {
		if !validAuthorityForm(t) {
			return ErrConnectNeedsAuthor
		}
		return nil
	}
	switch {
	case t[0] == '/':
		return nil
	case len(t) == 1 && t[0] == '*':
		if string(method) == "OPTIONS" {
			return nil
		}
		return ErrTarget
	case validAbsoluteForm(t):
		return nil
	}
	return ErrTarget
}

// parseField reads one "field-name ':' OWS field-value OWS CRLF" line
// (RFC 9112 §5) starting at b[i] and returns it with the offset of the next
// line. b must hold a CRLF at or after the end of the line.
func parseField(b []byte, i int) (Field, int, error) {
	n := i
	for isTchar[b[i]] {
		i++
	}
	if i == n {
		if b[i] == ' ' || b[i] == '\t' {
			return Field{}, 0, ErrObsFold
		}
		if b[i] == '\r' && b[i+1] != '\n' {
			return Field{}, 0, ErrBareCRLF
		}
		return Field{}, 0, ErrHeaderName
	}
	switch b[i] {
	case ':':
	case ' ', '\t':
		return Field{}, 0, ErrSpaceBeforeColon
	case '\r':
		if b[i+1] != '\n' {
			return Field{}, 0, ErrBareCRLF
		}
		return Field{}, 0, ErrNoColon
	default:
		return Field{}, 0, ErrHeaderName
	}
	name := Span{int32(n), int32(i - n)}
	i++
	for b[i] == ' ' || b[i] == '\t' {
		i++
	}
	v := i
	last := i // one past the last non-whitespace byte of the value
	for {
		c := b[i]
		if c == '\r' {
			break
		}
		if !isFieldByte[c] {
			return Field{}, 0, ErrHeaderValue
		}
		i++
		if c != ' ' && c != '\t' {
			last = i
		}
	}
	if b[i+1] != '\n' {
		return Field{}, 0, ErrBareCRLF
	}
	return Field{Name: name, Value: Span{int32(v), int32(last - v)}}, i + 2, nil
}

// validPercent reports whether every '%' in t starts a "%" HEXDIG HEXDIG
// triplet (RFC 3986 §2.1).
func validPercent(t []byte) bool {
	for i := 0; i < len(t); i++ {
		if t[i] == '%' {
			if i+2 >= len(t) || unhex(t[i+1]) < 0 || unhex(t[i+2]) < 0 {
				return false
			}
			i += 2
		}
	}
	return true
}

// validAbsoluteForm reports whether t starts with a URI scheme followed by
// "://" and a non-empty authority (RFC 9112 §3.2.2 with the http(s) shape).
func validAbsoluteForm(t []byte) bool {
	i := 0
	for i < len(t) && (isAlpha(t[i]) || i > 0 && (isDigit(t[i]) || t[i] == '+' || t[i] == '-' || t[i] == '.')) {
		i++
	}
	if i == 0 || len(t) < i+4 || string(t[i:i+3]) != "://" {
		return false
	}
	rest := t[i+3:]
	if j := bytes.IndexAny(rest, "/?"); j >= 0 {
		rest = rest[:j]
	}
	return len(rest) > 0 && ValidHost(rest)
}

// validAuthorityForm reports whether t is "host:port" (RFC 9112 §3.2.3).
func validAuthorityForm(t []byte) bool {
	c := bytes.LastIndexByte(t, ':')
	// ValidHost checked that what follows the port colon is digits; here the
	// port must be present and the colon must not be inside an IPv6 literal.
	return ValidHost(t) && c > 0 && c < len(t)-1 && t[len(t)-1] != ']'
}

// ValidHost reports whether v is an acceptable Host field value or
// authority: uri-host [ ":" port ] (RFC 9110 §7.2, RFC 3986 §3.2.2) where
// uri-host is an IP-literal in brackets or a reg-name/IPv4 address, and port
// is digits. The empty value is valid (RFC 9112 §3.2). Userinfo is not.
func ValidHost(v []byte) bool {
	i := 0
	if len(v) > 0 && v[0] == '[' {
		j := bytes.IndexByte(v, ']')
		if j < 2 {
			return false
		}
		for _, c := range v[1:j] {
			if !isIPLiteralChar[c] {
				return false
			}
		}
		i = j + 1
	} else {
		for i < len(v) && isRegNameChar[v[i]] {
			i++
		}
	}
	if i == len(v) {
		return true
	}
	if v[i] != ':' {
		return false
	}
	for _, c := range v[i+1:] {
		if !isDigit(c) {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlpha(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// EqualFold reports whether b equals s ignoring ASCII case; s must be
// lower or upper case letters, digits and '-' (a field name).
func EqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		if b[i]|0x20 != s[i]|0x20 {
			return false
		}
	}
	return true
}

// Character classes, built once from their RFC definitions.
var (
	isTchar         = byteSet("!#$%&'*+-.^_`|~", true)        // RFC 9110 §5.6.2
	isTargetChar    = byteSet("-._~:/?[]@!$&'()*+,;=%", true) // RFC 3986 unreserved, reserved but '#', '%'
	isRegNameChar   = byteSet("-._~!$&'()*+,;=", true)        // RFC 3986 reg-name, no pct-encoding (as net/url)
	isIPLiteralChar = byteSet(":.%-_~", true)                 // RFC 3986/6874 IP-literal with zone
	isFieldByte     = fieldBytes()                            // RFC 9110 §5.5 field-vchar, SP, HTAB
)

func byteSet(extra string, alnum bool) (t [256]bool) {
	for i := 0; i < 256; i++ {
		c := byte(i)
		t[i] = alnum && (isAlpha(c) || isDigit(c))
	}
	for i := 0; i < len(extra); i++ {
		t[extra[i]] = true
	}
	return t
}

func fieldBytes() (t [256]bool) {
	for i := 0x21; i < 256; i++ {
		t[i] = i != 0x7f
	}
	t[' '], t['\t'] = true, true
	return t
}
