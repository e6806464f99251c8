package engine_test

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/waitron/waitron/internal/engine"
	"github.com/waitron/waitron/internal/testutil"
)

// h2Raw opens an h2c connection to addr and sends the preface and an
// empty SETTINGS frame; the framer writes and reads raw frames.
func h2Raw(t *testing.T, addr string) (net.Conn, *http2.Framer) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return c, fr
}

// headerBlock encodes a GET of path, with extra fields.
func headerBlock(path string, extra ...hpack.HeaderField) []byte {
	var b bytes.Buffer
	enc := hpack.NewEncoder(&b)
	for _, f := range append([]hpack.HeaderField{{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "http"},
		{Name: ":authority", Value: "x"}, {Name: ":path", Value: path}}, extra...) {
		_ = enc.WriteField(f)
	}
	return b.Bytes()
}

// readUntilClosed reads frames until the server closes the connection
// and reports whether a GOAWAY came first (and its code).
func readUntilClosed(fr *http2.Framer) (goaway bool, code http2.ErrCode) {
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return goaway, code
		}
		if g, ok := f.(*http2.GoAwayFrame); ok {
			goaway, code = true, g.ErrCode
		}
	}
}

// probe asks s for / over HTTP/1.1 and fails unless it is answered.
func probe(t *testing.T, s *testServer) {
	t.Helper()
	c := &http.Client{Timeout: ioTimeout, Transport: &http.Transport{DisableKeepAlives: true}}
	if got := get(t, c, "GET", "http://"+s.addr+"/", nil); !strings.HasPrefix(got, "200") {
		t.Fatalf("another client while under attack: %s", got)
	}
}

// TestHTTP2Hostile: the HTTP/2 attacks that net/http's CVE history names
// — rapid reset (CVE-2023-44487), CONTINUATION floods (CVE-2023-45288),
// SETTINGS floods, oversized header blocks, a stalled preface — leave the
// server serving other clients, and the attacking connection is freed.
func TestHTTP2Hostile(t *testing.T) {
	s := start(t, http.HandlerFunc(tlsEcho), "max_request_header_size", "16384", "request_header_timeout", "1",
		"request_body_timeout", "1")
	t.Run("rapid reset", func(t *testing.T) {
		c, fr := h2Raw(t, s.addr)
		block := headerBlock("/")
		for id := uint32(1); id < 20000; id += 2 {
			if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndStream: true, EndHeaders: true}); err != nil {
				break // the server gave up on the connection
			}
			if err := fr.WriteRSTStream(id, http2.ErrCodeCancel); err != nil {
				break
			}
		}
		probe(t, s)
		c.Close()
	})
	t.Run("CONTINUATION flood", func(t *testing.T) {
		_, fr := h2Raw(t, s.addr)
		block := headerBlock("/", hpack.HeaderField{Name: "x-pad", Value: strings.Repeat("a", 1000)})
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block[:10]})
		for range 5000 {
			if fr.WriteContinuation(1, false, block[10:]) != nil {
				break
			}
		}
		probe(t, s)
		if goaway, _ := readUntilClosed(fr); !goaway {
			t.Error("no GOAWAY before the close")
		}
	})
	t.Run("SETTINGS flood", func(t *testing.T) {
		_, fr := h2Raw(t, s.addr)
		for range 100000 { // never reading the ACKs
			if fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 65535}) != nil {
				break
			}
		}
		probe(t, s)
		readUntilClosed(fr)
	})
	t.Run("oversized header block", func(t *testing.T) {
		_, fr := h2Raw(t, s.addr)
		block := headerBlock("/", hpack.HeaderField{Name: "x-big", Value: strings.Repeat("b", 15000)},
			hpack.HeaderField{Name: "x-big2", Value: strings.Repeat("c", 15000)})
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block[:16000]}); err != nil {
			t.Fatal(err)
		}
		if err := fr.WriteContinuation(1, true, block[16000:]); err != nil {
			t.Fatal(err)
		}
		fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
		status := ""
		for status == "" {
			f, err := fr.ReadFrame()
			if err != nil {
				t.Fatalf("no answer to an oversized header block: %v", err)
			}
			if h, ok := f.(*http2.MetaHeadersFrame); ok {
				status = h.PseudoValue("status")
			}
		}
		if status != "431" {
			t.Errorf("status %s, want 431", status)
		}
		probe(t, s)
	})
	t.Run("stalled body", func(t *testing.T) {
		_, fr := h2Raw(t, s.addr)
		var b bytes.Buffer
		enc := hpack.NewEncoder(&b)
		for _, f := range []hpack.HeaderField{{Name: ":method", Value: "POST"}, {Name: ":scheme", Value: "http"},
			{Name: ":authority", Value: "x"}, {Name: ":path", Value: "/stall"}} {
			_ = enc.WriteField(f)
		}
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: b.Bytes(), EndHeaders: true}); err != nil {
			t.Fatal(err)
		}
		if err := fr.WriteData(1, false, []byte("hello")); err != nil { // and no more: the body stalls
			t.Fatal(err)
		}
		fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				t.Fatalf("no answer once the body stalled past request_body_timeout: %v", err)
			}
			if d, ok := f.(*http2.DataFrame); ok && d.StreamID == 1 {
				if !strings.Contains(string(d.Data()), "body=5") {
					t.Errorf("handler saw %q", d.Data())
				}
				break
			}
		}
		probe(t, s)
	})
	t.Run("stalled preface", func(t *testing.T) {
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, _ = io.WriteString(c, http2.ClientPreface) // and no SETTINGS, no request
		probe(t, s)
		_ = c.SetReadDeadline(time.Now().Add(ioTimeout))
		if _, err := io.Copy(io.Discard, c); err != nil && !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "reset") {
			t.Fatalf("stalled preface: %v, want the server's close", err)
		}
	})
	testutil.WaitFor(t, "every attacking connection freed", func() bool { return s.Stats().Open == 0 })
	if st := s.Stats(); st.Closed[engine.CloseClientClosed] < 5 {
		t.Errorf("HTTP/2 connections counted closed: %v", st.Closed)
	}
}

// TestTLSHostile: garbage after the handshake and a record after the
// client's close_notify close that connection with a named reason; a
// flood of handshakes leaves plain requests served.
func TestTLSHostile(t *testing.T) {
	certs := testutil.NewCerts(t)
	s, addr := startTLS(t, http.HandlerFunc(tlsEcho), certs, "tls_handshake_limit", "4")
	c, err := tls.Dial("tcp", addr, certs.ClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A record of the right type and version whose contents do not
	// decrypt.
	_, _ = c.NetConn().Write(append([]byte{23, 3, 3, 0, 40}, bytes.Repeat([]byte{0x55}, 40)...))
	_ = c.SetReadDeadline(time.Now().Add(ioTimeout))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("a record that does not decrypt was answered")
	}
	testutil.WaitFor(t, "the bad record counted", func() bool { return s.Stats().Closed[engine.CloseTLSError] == 1 })

	done := make(chan struct{})
	flood := make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-done:
				flood <- n
				return
			default:
			}
			if fc, err := tls.Dial("tcp", addr, certs.ClientConfig()); err == nil {
				fc.Close()
				n++
			}
		}
	}()
	for range 20 {
		probe(t, s)
	}
	close(done)
	if n := <-flood; n == 0 {
		t.Error("no handshake completed during the flood")
	}
}

// TestHTTP2SlowReadersKeepNoWorker: with threads=1, an HTTP/2 client
// whose flow-control window stays closed blocks its handler's writes; the
// worker leaves the count of threads (as over HTTP/1 above
// outbuf_high_watermark), so another client is served.
func TestHTTP2SlowReadersKeepNoWorker(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			chunk := bytes.Repeat([]byte("x"), 64<<10)
			for range 160 { // 10 MiB
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
			return
		}
		io.WriteString(w, "served")
	})
	s := start(t, h, "threads", "1")
	for range 2 { // two stalled readers: more than threads
		c, fr := h2Raw(t, s.addr)
		_ = c.SetDeadline(time.Now().Add(ioTimeout))
		if err := fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0}); err != nil {
			t.Fatal(err)
		}
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: headerBlock("/big"), EndStream: true, EndHeaders: true}); err != nil {
			t.Fatal(err)
		}
		// Its response's head arrives; its body cannot (a window of 0).
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := f.(*http2.HeadersFrame); ok {
				break
			}
		}
	}
	c := &http.Client{Timeout: ioTimeout, Transport: &http.Transport{DisableKeepAlives: true}}
	if got := get(t, c, "GET", "http://"+s.addr+"/other", nil); got != "200 HTTP/1.1 served" {
		t.Fatalf("another client beside two stalled HTTP/2 readers, threads=1: %s", got)
	}
}
