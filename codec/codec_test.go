package codec_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/waitron/waitron/codec"
)

var update = flag.Bool("update", false, "rewrite the expected part of testdata/*.http")

const (
	testMaxHead = 8192
	testMaxBody = 1 << 20
	separator   = "\n----------\n"
)

// drive feeds raw to the codec in pieces that end at the offsets in cuts
// (then the rest), exactly the way a server does: bytes not consumed stay
// buffered and are offered again with the next piece. It returns a
// description of the first request found, or of the error.
func drive(raw []byte, cuts []int) string {
	var (
		out       strings.Builder
		h         codec.Head
		buf, body []byte
		consumed  int
		fed       int
		rd        = codec.Reader{MaxHead: testMaxHead, MaxBody: testMaxBody}
	)
	fail := func(err error) string {
		var ce *codec.Error
		if !errors.As(err, &ce) {
			return out.String() + "error of unexpected type: " + err.Error() + "\n"
		}
		fmt.Fprintf(&out, "error %d %s\n", ce.Status, ce.Detail)
		return out.String()
	}
	for {
		for {
			st, err := rd.Next(buf, &h)
			if st.N < 0 || st.N > len(buf) || len(st.Data) > st.N {
				return "Next returned an impossible count\n"
			}
			if st.Head {
				fmt.Fprintf(&out, "method %s\ntarget %q\nversion 1.%d\n", h.MethodBytes(), h.TargetBytes(), h.Minor)
				for _, f := range h.Fields {
					fmt.Fprintf(&out, "field %q: %q\n", h.Bytes(f.Name), h.Bytes(f.Value))
				}
			}
			if st.Head && err == nil {
				fr := rd.Framing()
				switch fr.Body {
				case codec.BodyNone:
					out.WriteString("body none\n")
				case codec.BodyLength:
					fmt.Fprintf(&out, "body length %d\n", fr.Length)
				case codec.BodyChunked:
					out.WriteString("body chunked\n")
				}
				fmt.Fprintf(&out, "close %v\nexpect100 %v\n", fr.Close, fr.Expect100)
			}
			body = append(body, st.Data...)
			buf, consumed = buf[st.N:], consumed+st.N
			if err != nil {
				return fail(err)
			}
			if st.End {
				if rd.Framing().Body == codec.BodyChunked {
					trailer, fields := rd.TakeTrailer()
					fmt.Fprintf(&out, "trailer %q\n", trailer)
					if len(fields) != bytes.Count(trailer, []byte("\r\n")) {
						return out.String() + "trailer fields do not match its lines\n"
					}
				}
				fmt.Fprintf(&out, "data %q\nrest %d\n", body, len(raw)-consumed)
				return out.String()
			}
			if st.N == 0 && !st.Head {
				break // more input needed
			}
		}
		if fed == len(raw) {
			return out.String() + "incomplete\n"
		}
		next := len(raw)
		if len(cuts) > 0 {
			next, cuts = cuts[0], cuts[1:]
		}
		buf = append(buf, raw[fed:next]...)
		fed = next
	}
}

func loadCases(t testing.TB) map[string][2][]byte {
	files, err := filepath.Glob("testdata/*.http")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	cases := make(map[string][2][]byte)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		raw, want, ok := bytes.Cut(b, []byte(separator))
		if !ok {
			t.Fatalf("%s: no %q separator", f, separator)
		}
		cases[f] = [2][]byte{raw, want}
	}
	return cases
}

// TestGolden parses every raw request under testdata whole, byte by byte and
// split at every offset, and checks all give the recorded result.
func TestGolden(t *testing.T) {
	for file, c := range loadCases(t) {
		raw, want := c[0], string(c[1])
		name := strings.TrimSuffix(filepath.Base(file), ".http")
		t.Run(name, func(t *testing.T) {
			got := drive(raw, nil)
			if *update {
				if err := os.WriteFile(file, append(append(raw, separator...), got...), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if got != want {
				t.Fatalf("whole input:\n got: %s\nwant: %s", got, want)
			}
			bytewise := make([]int, len(raw))
			for i := range bytewise {
				bytewise[i] = i + 1
			}
			if got := drive(raw, bytewise); got != want {
				t.Fatalf("byte by byte:\n got: %s\nwant: %s", got, want)
			}
			for k := 1; k < len(raw); k++ {
				if got := drive(raw, []int{k}); got != want {
					t.Fatalf("split at %d:\n got: %s\nwant: %s", k, got, want)
				}
			}
		})
	}
}

// TestGoldenCoverage makes sure the corpus keeps both accepted requests and
// every error status the codec can produce.
func TestGoldenCoverage(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range loadCases(t) {
		want := string(c[1])
		if i := strings.Index(want, "error "); i >= 0 {
			seen[want[i+6:i+9]] = true
		} else if strings.Contains(want, "rest ") {
			seen["ok"] = true
		}
	}
	for _, s := range []string{"ok", "400", "413", "431", "501", "505"} {
		if !seen[s] {
			t.Errorf("no golden case ends in %s", s)
		}
	}
}

func TestHeadSizeBoundary(t *testing.T) {
	head := []byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	var h codec.Head
	if n, err := codec.ParseHead(head, &h, len(head)); err != nil || n != len(head) {
		t.Fatalf("head of exactly max bytes: n=%d err=%v", n, err)
	}
	h.Reset()
	if _, err := codec.ParseHead(head, &h, len(head)-1); err != codec.ErrHeaderTooLarge {
		t.Fatalf("head one byte over max: err=%v", err)
	}
	h.Reset()
	if _, err := codec.ParseHead(head[:len(head)-1], &h, len(head)-1); err != codec.ErrHeaderTooLarge {
		t.Fatalf("partial head reaching max: err=%v", err)
	}
}

func TestBodyLimitBoundary(t *testing.T) {
	for _, tc := range []struct {
		cl   int64
		want error
	}{{testMaxBody, nil}, {testMaxBody + 1, codec.ErrBodyTooLarge}} {
		var h codec.Head
		raw := []byte("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: " + strconv.FormatInt(tc.cl, 10) + "\r\n\r\n")
		if _, err := codec.ParseHead(raw, &h, testMaxHead); err != nil {
			t.Fatal(err)
		}
		if _, err := h.Frame(testMaxBody); err != tc.want {
			t.Errorf("Content-Length %d: err=%v, want %v", tc.cl, err, tc.want)
		}
	}
	// Chunked bodies count decoded bytes: exactly max is fine, one more is not.
	for _, tc := range []struct {
		size int
		want error
	}{{testMaxBody, nil}, {testMaxBody + 1, codec.ErrBodyTooLarge}} {
		d := codec.ChunkedDecoder{Max: testMaxBody, MaxTrailer: 100}
		in := []byte(strconv.FormatInt(int64(tc.size), 16) + "\r\n")
		_, _, err := d.Decode(in)
		if err != tc.want {
			t.Errorf("chunk of %d: err=%v, want %v", tc.size, err, tc.want)
		}
	}
}

func TestParseHeadAllocs(t *testing.T) {
	raw := []byte("GET /plaintext?x=1 HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: wrk/4.2\r\n" +
		"Accept: text/plain,text/html;q=0.9\r\nAccept-Encoding: gzip\r\nConnection: keep-alive\r\n" +
		"Cookie: a=b; c=d\r\nX-Request-Id: 1234\r\n\r\n")
	var h codec.Head
	allocs := testing.AllocsPerRun(1000, func() {
		h.Reset()
		n, err := codec.ParseHead(raw, &h, testMaxHead)
		if err != nil || n != len(raw) {
			t.Fatalf("n=%d err=%v", n, err)
		}
		if _, err := h.Frame(testMaxBody); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("parsing a typical head allocates %v times, want 0", allocs)
	}
}

func TestChunkedDecodeAllocs(t *testing.T) {
	in := []byte("5\r\nhello\r\n6;a=b\r\n world\r\n0\r\n\r\n")
	allocs := testing.AllocsPerRun(1000, func() {
		d := codec.ChunkedDecoder{Max: testMaxBody, MaxTrailer: 100}
		rest := in
		for !d.Done() {
			n, _, err := d.Decode(rest)
			if err != nil || n == 0 {
				t.Fatalf("n=%d err=%v", n, err)
			}
			rest = rest[n:]
		}
	})
	if allocs != 0 {
		t.Fatalf("decoding a chunked body allocates %v times, want 0", allocs)
	}
}
