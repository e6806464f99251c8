package codec

// Reader reads the requests of one connection's byte stream, one message at
// a time, in explicit steps: the head, the body's bytes, the end of the
// message (with a chunked body's trailer fields). It copies nothing and
// keeps no input: each step says how many bytes of in it consumed, and
// the caller drops those and calls again with what follows (more input
// appended). The engine, the pipelined-burst gatherer (through ReadHead),
// the golden tests and the fuzz targets all read requests with it.
//
// Set MaxHead and MaxBody before the first call; Piece, when not 0, bounds
// the body bytes one step returns.
type Reader struct {
	MaxHead int   // max_request_header_size: the head, and a chunked body's trailer section
	MaxBody int64 // max_request_body_size, on decoded bytes
	Piece   int

	inBody    bool
	framing   Framing
	remaining int64           // of a Content-Length body
	dec       *ChunkedDecoder // of a chunked body; a connection between such bodies keeps none
}

// Step is what one call of Next did.
type Step struct {
	N    int    // bytes of in consumed (the head's, the body's framing and data)
	Head bool   // a head was parsed into the Head given (in[:N] are its bytes); Framing says what follows
	Data []byte // body bytes, a slice of in
	End  bool   // the message is complete: the next call reads a head
}

// ReadHead parses a request head from in into h and decides its framing:
// n is its length, 0 while it is incomplete. A head that parsed but whose
// framing is refused (RFC 9112 §6.3) comes back with its n and the error,
// h holding it. Nothing is kept.
func ReadHead(in []byte, h *Head, maxHead int, maxBody int64) (n int, fr Framing, err error) {
	if n, err = ParseHead(in, h, maxHead); err != nil || n == 0 {
		return 0, fr, err
	}
	fr, err = h.Frame(maxBody)
	return n, fr, err
}

// Next takes the next step of the message in in: between messages it
// parses a head into h (Next does not look at h again), then it returns
// the body's bytes and the end. A step that consumed
// nothing and returned nothing asks for more input. An error is final for
// the connection; it carries the HTTP status to answer with.
func (r *Reader) Next(in []byte, h *Head) (Step, error) {
	if !r.inBody {
		n, fr, err := ReadHead(in, h, r.MaxHead, r.MaxBody)
		if n == 0 {
			return Step{}, err
		}
		if err != nil {
			return Step{N: n, Head: true}, err // the head, whose framing is refused
		}
		r.framing, r.dec = fr, nil
		st := Step{N: n, Head: true}
		switch fr.Body {
		case BodyNone:
			st.End = true
		case BodyLength:
			r.inBody, r.remaining = true, fr.Length
		case BodyChunked:
			r.inBody = true
			r.dec = &ChunkedDecoder{Max: r.MaxBody, MaxTrailer: r.MaxHead}
		}
		return st, nil
	}
	piece := in
	if r.Piece > 0 && len(piece) > r.Piece {
		piece = piece[:r.Piece]
	}
	if r.framing.Body == BodyLength {
		k := min(r.remaining, int64(len(piece)))
		r.remaining -= k
		st := Step{N: int(k), Data: piece[:k], End: r.remaining == 0}
		r.inBody = !st.End
		return st, nil
	}
	// Chunked: at most a piece, unless a line longer than that (a long
	// trailer field) needs the whole input.
	n, data, err := r.dec.Decode(piece)
	if n == 0 && err == nil && len(piece) < len(in) {
		n, data, err = r.dec.Decode(in)
	}
	st := Step{N: n, Data: data, End: err == nil && r.dec.Done()}
	r.inBody = !st.End
	return st, err
}

// Framing returns the framing of the message whose head was read last.
func (r *Reader) Framing() Framing { return r.framing }

// InBody reports whether the head of a message was read and its body not
// yet to its end.
func (r *Reader) InBody() bool { return r.inBody }

// TakeTrailer returns the trailer section of the chunked message that
// just ended — its validated lines, and its fields as spans into them —
// and lets go of the message's decoder. nil when there is none.
func (r *Reader) TakeTrailer() ([]byte, []Field) {
	d := r.dec
	r.dec = nil
	if d == nil {
		return nil, nil
	}
	return d.Trailer, d.TrailerFields
}
