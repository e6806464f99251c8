package engine_test

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// TestSmugglingCorpusOnTheWire sends every rejected request of the codec's
// golden corpus (testdata/*.http: smuggling, obs-fold, bare CR/LF, NUL,
// chunk-extension and whitespace tricks…) followed by a second request on
// the same connection. Each must get the recorded status in the server's
// error format and a close, and the request after it must never run
// (CVE-2024-49768).
func TestSmugglingCorpusOnTheWire(t *testing.T) {
	var executed atomic.Int64
	s := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		executed.Add(1)
		io.Copy(io.Discard, r.Body)
	}), "max_request_header_size", "8192", "max_request_body_size", "1048576")
	files, _ := filepath.Glob("../../codec/testdata/*.http")
	statusRE := regexp.MustCompile(`error (\d{3}) (.*)\n`)
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		raw, want, _ := bytes.Cut(b, []byte("\n----------\n"))
		m := statusRE.FindSubmatch(want)
		if m == nil {
			continue
		}
		n++
		t.Run(strings.TrimSuffix(filepath.Base(f), ".http"), func(t *testing.T) {
			before := executed.Load()
			got := s.roundTrip(t, string(raw)+"GET /after HTTP/1.1\r\nHost: a\r\n\r\n")
			status, _ := strconv.Atoi(string(m[1]))
			expectEqual(t, "answer", masked(got), errorResp(status, string(m[2])))
			if d := executed.Load() - before; d != 0 {
				t.Fatalf("%d requests executed", d)
			}
		})
	}
	if n < 50 {
		t.Fatalf("only %d rejected cases in the corpus", n)
	}
}
