package codec_test

import (
	"bufio"
	"bytes"
	"net/http"
	"net/textproto"
	"strings"
	"testing"

	"github.com/waitron/waitron/codec"
)

func seed(f *testing.F) {
	for _, c := range loadCases(f) {
		f.Add(c[0], uint16(len(c[0])/2))
	}
}

// FuzzRequest drives the head parser, the framing decision and the body
// decoders: no panic, and the same result whole, split once and (for short
// inputs) byte by byte.
func FuzzRequest(f *testing.F) {
	seed(f)
	f.Fuzz(func(t *testing.T, raw []byte, split uint16) {
		whole := drive(raw, nil)
		if len(raw) == 0 {
			return
		}
		k := int(split) % len(raw)
		if got := drive(raw, []int{k}); got != whole {
			t.Fatalf("split at %d differs:\n got: %s\nwhole: %s", k, got, whole)
		}
		if len(raw) <= 512 {
			cuts := make([]int, len(raw))
			for i := range cuts {
				cuts[i] = i + 1
			}
			if got := drive(raw, cuts); got != whole {
				t.Fatalf("byte by byte differs:\n got: %s\nwhole: %s", got, whole)
			}
		}
	})
}

// FuzzChunked feeds arbitrary bytes to the chunked decoder alone: it never
// consumes more than it is given, never returns data it did not consume,
// and gives the same body and error whole and split.
func FuzzChunked(f *testing.F) {
	for _, c := range loadCases(f) {
		if _, body, ok := bytes.Cut(c[0], []byte("\r\n\r\n")); ok && bytes.Contains(c[0], []byte("chunked")) {
			f.Add(body, uint16(len(body)/2))
		}
	}
	decode := func(in []byte, cut int) (string, error) {
		d := codec.ChunkedDecoder{Max: 1 << 16, MaxTrailer: 1 << 10}
		var body, buf []byte
		pieces := [][]byte{in[:cut], in[cut:]}
		for _, p := range pieces {
			buf = append(buf, p...)
			for !d.Done() {
				n, data, err := d.Decode(buf)
				if n < 0 || n > len(buf) || len(data) > n {
					panic("impossible count")
				}
				body = append(body, data...)
				buf = buf[n:]
				if err != nil {
					return string(body), err
				}
				if n == 0 {
					break
				}
			}
		}
		if !d.Done() {
			return string(body) + "<incomplete>", nil
		}
		return string(body) + "<trailer " + string(d.Trailer) + ">", nil
	}
	f.Fuzz(func(t *testing.T, in []byte, split uint16) {
		b1, e1 := decode(in, len(in))
		k := 0
		if len(in) > 0 {
			k = int(split) % len(in)
		}
		b2, e2 := decode(in, k)
		if e1 != e2 || e1 == nil && b1 != b2 {
			t.Fatalf("split at %d: %q %v, whole: %q %v", k, b2, e2, b1, e1)
		}
	})
}

// FuzzDifferential checks that every head waitron accepts is also accepted
// by net/http's own request reader, with the same method, target, version
// and fields. waitron is stricter, so the converse is not required.
func FuzzDifferential(f *testing.F) {
	seed(f)
	f.Fuzz(func(t *testing.T, raw []byte, _ uint16) {
		var h codec.Head
		n, fr, err := codec.ReadHead(raw, &h, 1<<16, 1<<30)
		if err != nil || n == 0 {
			return
		}
		// RFC 9112 §2.2 lets a server skip empty lines before the request
		// line; waitron does, net/http's reader does not.
		head := raw[:n]
		for bytes.HasPrefix(head, []byte("\r\n")) {
			head = head[2:]
		}
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head)))
		if err != nil && !deliberate(err, &h) {
			t.Fatalf("waitron accepts what net/http rejects (%v):\n%q", err, head)
		}
		if err != nil {
			return
		}
		if fr.Body == codec.BodyLength && req.ContentLength != fr.Length {
			t.Fatalf("Content-Length: net/http %d, waitron %d", req.ContentLength, fr.Length)
		}
		if req.Method != string(h.MethodBytes()) || req.RequestURI != string(h.TargetBytes()) ||
			req.ProtoMinor != h.Minor || req.ProtoMajor != 1 {
			t.Fatalf("request line differs: net/http %s %s %s", req.Method, req.RequestURI, req.Proto)
		}
		want := http.Header{}
		for _, fd := range h.Fields {
			k := textproto.CanonicalMIMEHeaderKey(string(h.Bytes(fd.Name)))
			want[k] = append(want[k], string(h.Bytes(fd.Value)))
		}
		for k, vs := range want {
			if k == "Content-Length" { // net/http folds equal duplicates; compared above
				continue
			}
			if k == "Transfer-Encoding" { // net/http moves it to req.TransferEncoding
				if len(req.TransferEncoding) != 1 || req.TransferEncoding[0] != "chunked" {
					t.Fatalf("Transfer-Encoding: net/http %q, waitron %q", req.TransferEncoding, vs)
				}
				continue
			}
			if k == "Host" { // net/http moves it to req.Host
				if req.Host != vs[0] && req.URL.Host == "" { // the target's authority wins
					t.Fatalf("Host: net/http %q, waitron %q", req.Host, vs[0])
				}
				continue
			}
			if got := req.Header[k]; strings.Join(got, "\x00") != strings.Join(vs, "\x00") {
				t.Fatalf("field %s: net/http %q, waitron %q", k, got, vs)
			}
		}
	})
}

// deliberate reports whether net/http's err refusing h is one of the
// differences docs/conformance.md lists: empty elements of the
// Transfer-Encoding list, which RFC 9110 §5.6.1 says to skip (net/http
// refuses any value but "chunked"); and a Trailer field announcing a
// framing field, which the net/http adapter refuses as net/http does, once
// it builds the request (the codec leaves the field to the adapters, whose
// rules differ).
func deliberate(err error, h *codec.Head) bool {
	if strings.Contains(err.Error(), "bad trailer key") {
		return true
	}
	if !strings.Contains(err.Error(), "unsupported transfer encoding") {
		return false
	}
	var codings []string
	for _, fd := range h.Fields {
		if strings.EqualFold(string(h.Bytes(fd.Name)), "transfer-encoding") {
			for _, c := range strings.Split(string(h.Bytes(fd.Value)), ",") {
				if c = strings.Trim(c, " \t"); c != "" {
					codings = append(codings, c)
				}
			}
		}
	}
	return len(codings) == 1 && strings.EqualFold(codings[0], "chunked")
}
