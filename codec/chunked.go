package codec

import "bytes"

// maxChunkLine bounds a chunk-size line, extensions included. Extensions are
// ignored, so a longer line can only be an attack on memory.
const maxChunkLine = 4096

type chunkState uint8

const (
	chunkSize     chunkState = iota // expecting a chunk-size line
	chunkData                       // inside chunk data
	chunkDataCRLF                   // expecting the CRLF after chunk data
	chunkTrailer                    // reading trailer field lines
	chunkDone                       // last chunk and trailer section consumed
)

// ChunkedDecoder decodes the chunked transfer coding (RFC 9112 §7.1)
// incrementally. Set Max (max_request_body_size, counted on decoded bytes)
// and MaxTrailer before the first call; the zero value of the rest is ready.
type ChunkedDecoder struct {
	Max        int64 // limit on decoded body bytes: more is a 413
	MaxTrailer int   // limit on the trailer section: more is a 431
	// Trailer holds the validated trailer field lines, each ending in CRLF;
	// TrailerFields are those fields, their spans into Trailer.
	Trailer       []byte
	TrailerFields []Field

	state     chunkState
	remaining int64 // data bytes left in the current chunk
	total     int64 // decoded bytes so far
}

// Done reports whether the whole chunked body, trailer included, has been
// consumed.
func (d *ChunkedDecoder) Done() bool { return d.state == chunkDone }

// Decode consumes framing from in up to and including the next piece of
// chunk data, which it returns as a slice of in (no copy). It returns n = 0,
// no data and a nil error when in holds no complete element yet; the caller
// keeps the unconsumed bytes and calls again with more. Call it until Done
// reports true; data may be empty even when n > 0.
func (d *ChunkedDecoder) Decode(in []byte) (n int, data []byte, err error) {
	for n < len(in) {
		switch d.state {
		case chunkSize:
			line, next, err := d.line(in[n:], maxChunkLine, ErrChunkLineTooLong)
			if err != nil || line == nil {
				return n, nil, err
			}
			size, err := parseChunkSize(line)
			if err != nil {
				return n, nil, err
			}
			if size > d.Max-d.total {
				return n, nil, ErrBodyTooLarge
			}
			n += next
			if size == 0 {
				d.state = chunkTrailer
			} else {
				d.state, d.remaining = chunkData, size
			}
		case chunkData:
			k := int64(len(in) - n)
			if k > d.remaining {
				k = d.remaining
			}
			data = in[n : n+int(k)]
			n += int(k)
			d.remaining -= k
			d.total += k
			if d.remaining == 0 {
				d.state = chunkDataCRLF
			}
			return n, data, nil
		case chunkDataCRLF:
			if len(in)-n < 2 {
				if in[n] != '\r' {
					return n, nil, ErrChunkTerminator
				}
				return n, nil, nil
			}
			if in[n] != '\r' || in[n+1] != '\n' {
				return n, nil, ErrChunkTerminator
			}
			n += 2
			d.state = chunkSize
		case chunkTrailer:
			room := d.MaxTrailer - len(d.Trailer)
			line, next, err := d.line(in[n:], room, ErrTrailerTooLarge)
			if err != nil || line == nil {
				return n, nil, err
			}
			if len(line) == 0 {
				d.state = chunkDone
				return n + next, nil, nil
			}
			f, _, err := parseField(in[n:n+next], 0)
			if err != nil {
				return n, nil, err
			}
			off := int32(len(d.Trailer))
			f.Name.Off += off
			f.Value.Off += off
			d.TrailerFields = append(d.TrailerFields, f)
			d.Trailer = append(d.Trailer, in[n:n+next]...)
			n += next
		case chunkDone:
			return n, nil, nil
		}
	}
	return n, nil, nil
}

// line returns the next CRLF-terminated line of in without its CRLF and the
// number of bytes it spans with the CRLF, or a nil line while it is
// incomplete. A line (with CRLF) longer than limit is reported as tooLong.
func (d *ChunkedDecoder) line(in []byte, limit int, tooLong *Error) ([]byte, int, error) {
	p := bytes.IndexByte(in, '\n')
	if p < 0 {
		if len(in) >= limit {
			return nil, 0, tooLong
		}
		return nil, 0, nil
	}
	if p+1 > limit {
		return nil, 0, tooLong
	}
	if p == 0 || in[p-1] != '\r' {
		return nil, 0, ErrBareCRLF
	}
	line := in[:p-1]
	if bytes.IndexByte(line, '\r') >= 0 {
		return nil, 0, ErrBareCRLF
	}
	return line, p + 1, nil
}

// parseChunkSize parses "chunk-size [ chunk-ext ]" (RFC 9112 §7.1, §7.1.1):
// 1*HEXDIG, then extensions *( BWS ";" BWS name [ BWS "=" BWS value ] )
// with token names and token or quoted-string values. Extensions are
// validated and ignored.
func parseChunkSize(line []byte) (int64, error) {
	var size int64
	i, sig := 0, 0
	for ; i < len(line); i++ {
		v := unhex(line[i])
		if v < 0 {
			break
		}
		if sig > 0 || v != 0 {
			sig++
		}
		if sig > 15 { // 15 hex digits stay below 2^60: far above any body limit
			return 0, ErrBodyTooLarge
		}
		size = size<<4 | int64(v)
	}
	if i == 0 {
		return 0, ErrChunkSize
	}
	if i < len(line) && !validChunkExt(line[i:]) {
		if line[i] != ' ' && line[i] != '\t' && line[i] != ';' {
			return 0, ErrChunkSize
		}
		return 0, ErrChunkExtension
	}
	return size, nil
}

func validChunkExt(e []byte) bool {
	i := 0
	ows := func() {
		for i < len(e) && (e[i] == ' ' || e[i] == '\t') {
			i++
		}
	}
	token := func() bool {
		s := i
		for i < len(e) && isTchar[e[i]] {
			i++
		}
		return i > s
	}
	for i < len(e) {
		ows()
		if i == len(e) || e[i] != ';' {
			return false
		}
		i++
		ows()
		if !token() {
			return false
		}
		save := i
		ows()
		if i == len(e) || e[i] != '=' {
			i = save
			continue
		}
		i++
		ows()
		if i < len(e) && e[i] == '"' {
			if !quotedString(e, &i) {
				return false
			}
		} else if !token() {
			return false
		}
	}
	return true
}

// quotedString consumes a quoted-string (RFC 9110 §5.6.4) at e[*i].
func quotedString(e []byte, i *int) bool {
	j := *i + 1
	for j < len(e) {
		c := e[j]
		switch {
		case c == '"':
			*i = j + 1
			return true
		case c == '\\':
			if j+1 == len(e) || !isFieldByte[e[j+1]] {
				return false
			}
			j += 2
		case isFieldByte[c]:
			j++
		default:
			return false
		}
	}
	return false
}
