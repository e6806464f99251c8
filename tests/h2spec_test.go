package tests

import (
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/waitron/waitron/internal/testutil"
)

// h2specFailures runs the h2spec conformance suite (the tests module's
// tool) against addr, over TLS when secure, and returns the cases that
// failed ("section: case") and how many ran.
func h2specFailures(t *testing.T, addr string, secure bool) (failed []string, ran int, err error) {
	host, port, _ := net.SplitHostPort(addr)
	report := filepath.Join(t.TempDir(), "report.xml")
	args := []string{"tool", "h2spec", "-h", host, "-p", port, "-P", "/plaintext", "-j", report}
	if secure {
		args = append(args, "-t", "-k")
	}
	cmd := exec.Command("go", args...)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	_ = cmd.Run() // non-zero when a case fails: the report says which
	b, err := os.ReadFile(report)
	if err != nil {
		return nil, 0, fmt.Errorf("h2spec wrote no report: %w", err)
	}
	var r struct {
		Suites []struct {
			Name  string `xml:"name,attr"`
			Cases []struct {
				Name    string    `xml:"classname,attr"`
				Failure *struct{} `xml:"failure"`
				Error   *struct{} `xml:"error"` // how h2spec reports a case the server failed
				Skipped *struct{} `xml:"skipped"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b, &r); err != nil {
		return nil, 0, err
	}
	for _, s := range r.Suites {
		for _, c := range s.Cases {
			if c.Skipped != nil {
				continue
			}
			ran++
			if c.Failure != nil || c.Error != nil {
				failed = append(failed, s.Name+": "+c.Name)
			}
		}
	}
	return failed, ran, nil
}

// TestH2Spec: h2spec's HTTP/2 conformance cases, over h2c and TLS, fail on
// waitron only where they fail on net/http too (its HTTP/2 server is Go's;
// the handful net/http fails are its own choices).
func TestH2Spec(t *testing.T) {
	testutil.RequireTool(t, "go")
	certs := testutil.NewCerts(t)
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The body first: a case that sends a wrong content-length is
		// judged by the server's read of it, not by a race with the answer.
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			return
		}
		_, _ = io.WriteString(w, "Hello, World!")
	})
	w, stdPlain, stdTLS := h2Servers(t, hello, certs)
	type run struct {
		failed []string
		ran    int
		err    error
	}
	targets := []struct {
		name   string
		addr   string
		secure bool
	}{
		{"waitron h2c", w.addr, false}, {"net/http h2c", stdPlain, false},
		{"waitron h2", w.Addrs()[1].String(), true}, {"net/http h2", stdTLS, true},
	}
	runs := make([]run, len(targets))
	var wg sync.WaitGroup
	for i, tg := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runs[i].failed, runs[i].ran, runs[i].err = h2specFailures(t, tg.addr, tg.secure)
		}()
	}
	wg.Wait()
	for i := 0; i < len(targets); i += 2 {
		ours, theirs := runs[i], runs[i+1]
		if ours.err != nil || theirs.err != nil {
			t.Fatalf("h2spec: %v; %v", ours.err, theirs.err)
		}
		if ours.ran < 140 {
			t.Errorf("%s: only %d cases ran", targets[i].name, ours.ran)
		}
		t.Logf("%s: %d of %d cases pass; %s: %d of %d", targets[i].name, ours.ran-len(ours.failed), ours.ran,
			targets[i+1].name, theirs.ran-len(theirs.failed), theirs.ran)
		for _, f := range ours.failed {
			if !slices.Contains(theirs.failed, f) {
				t.Errorf("%s fails where net/http passes: %s", targets[i].name, f)
			}
		}
	}
}
