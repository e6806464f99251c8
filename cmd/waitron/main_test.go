package main

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/waitron/waitron/internal/engine"
	"github.com/waitron/waitron/internal/testutil"
	"github.com/waitron/waitron/limits"
)

func TestHelpListsEveryOption(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"--help"}, &out, &errb, nil, nil); code != 0 {
		t.Fatalf("--help exited %d: %s", code, errb.String())
	}
	for _, opt := range limits.Table() {
		if !strings.Contains(out.String(), strings.TrimPrefix(opt.Flag(), "--")) {
			t.Errorf("--help does not list %s", opt.Flag())
		}
		def := opt.Default
		if def == "" {
			def = `""`
		}
		if opt.Kind != limits.Bool && !strings.Contains(out.String(), "["+def+"]") {
			t.Errorf("--help does not show the default of %s (%s)", opt.Flag(), opt.Default)
		}
	}
	if !strings.Contains(out.String(), "--[no-]expose-tracebacks") {
		t.Errorf("--help does not show the --no- form of booleans:\n%s", out.String())
	}
}

func TestBadOptionsExitNonZero(t *testing.T) {
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"--threads", "0"}, []string{"--threads must be at least 1"}}, // named as given
		{[]string{"--threads", "0", "--channel-timeout", "-1", "--max-request-body-size", "0"},
			[]string{"--threads must be at least 1", "--channel-timeout must be at least 1", "--max-request-body-size must be at least 1"}},
		{[]string{"--threads", "four"}, []string{`"four" is not an integer`}},
		{[]string{"--expose-tracebacks=nope"}, []string{`"nope" is not a boolean`}},
		{[]string{"--listen", "127.0.0.1:1", "--port", "2"}, []string{"host or port may not be set if listen is set"}},
		{[]string{"--no-such-option"}, []string{"unknown flag: --no-such-option"}},
		{[]string{"--app", "nope"}, []string{`unknown app "nope"`}},
		{[]string{"stray"}, []string{`unexpected argument "stray"`}},
		{[]string{"--listen", "no.such.host.invalid:80"}, []string{"cannot resolve host"}},
		{[]string{"--gc-floor", "-1"}, []string{"--gc-floor must be 0 or more bytes, not -1"}},
		{[]string{"--gc-floor", "lots"}, []string{`invalid argument "lots" for "--gc-floor"`}},
		{[]string{"--gc-floor", "-1", "--threads", "0"}, []string{"threads must be at least 1", "--gc-floor must be 0 or more bytes"}},
	}
	for _, tc := range cases {
		var out, errb bytes.Buffer
		code := run(tc.args, &out, &errb, nil, nil)
		if code == 0 {
			t.Errorf("%v: exit 0", tc.args)
		}
		for _, w := range tc.want {
			if !strings.Contains(errb.String(), w) {
				t.Errorf("%v: stderr lacks %q:\n%s", tc.args, w, errb.String())
			}
		}
		if code == 2 && !strings.Contains(errb.String(), "usage: waitron") {
			t.Errorf("%v: no usage line:\n%s", tc.args, errb.String())
		}
	}
}

// startCommand runs the command on a free port and stops it with a signal
// when the test ends, checking it exits 0.
func startCommand(t *testing.T, args ...string) string {
	t.Helper()
	sig := make(chan os.Signal, 2)
	started := make(chan *engine.Server, 1)
	exit := make(chan int, 1)
	var errb testutil.SyncBuffer
	go func() {
		exit <- run(append([]string{"--listen", "127.0.0.1:0"}, args...), io.Discard, &errb, sig, started)
	}()
	var srv *engine.Server
	select {
	case srv = <-started:
	case code := <-exit:
		t.Fatalf("exited %d before serving: %s", code, errb.String())
	case <-time.After(10 * time.Second):
		t.Fatal("not serving after 10 s")
	}
	t.Cleanup(func() {
		sig <- syscall.SIGTERM
		select {
		case code := <-exit:
			if code != 0 {
				t.Errorf("exit code %d after SIGTERM: %s", code, errb.String())
			}
		case <-time.After(10 * time.Second):
			t.Error("no exit 10 s after SIGTERM")
		}
	})
	return srv.Addrs()[0].String()
}

// TestGCFloorYieldsToEnvironment: --gc-floor is on by default, and an
// operator's GOGC or GOMEMLIMIT wins: the default then stands down (and says
// so), an explicit --gc-floor is refused rather than silently ignored.
func TestGCFloorYieldsToEnvironment(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	_, cmd, _, err := parseArgs(nil)
	if err != nil || cmd.gcFloor != defaultGCFloor {
		t.Fatalf("default: floor %d, err %v; want %d", cmd.gcFloor, err, defaultGCFloor)
	}
	if _, cmd, _, _ = parseArgs([]string{"--gc-floor", "0"}); cmd.gcFloor != 0 {
		t.Fatalf("--gc-floor 0: floor %d", cmd.gcFloor)
	}
	t.Setenv("GOMEMLIMIT", "1GiB")
	if _, cmd, _, err = parseArgs(nil); err != nil || cmd.gcFloor != 0 || cmd.gcEnv != "GOMEMLIMIT=1GiB" {
		t.Fatalf("with GOMEMLIMIT: floor %d, env %q, err %v", cmd.gcFloor, cmd.gcEnv, err)
	}
	if _, _, _, err = parseArgs([]string{"--gc-floor", "1000000"}); err == nil || !strings.Contains(err.Error(), "conflicts with GOMEMLIMIT=1GiB") {
		t.Fatalf("explicit --gc-floor with GOMEMLIMIT: %v", err)
	}
	var out, errb bytes.Buffer
	code := run([]string{"--listen", "127.0.0.1:0", "--help"}, &out, &errb, nil, nil)
	if code != 0 || !strings.Contains(out.String(), "--gc-floor INT") {
		t.Fatalf("--help (exit %d) does not list --gc-floor:\n%s", code, out.String())
	}
}

func TestServeWithGoClient(t *testing.T) {
	addr := startCommand(t)
	client := &http.Client{Timeout: 10 * time.Second}
	for i := 0; i < 3; i++ { // keep-alive reuse
		resp, err := client.Get("http://" + addr + "/plaintext")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "Hello, World!" || resp.ContentLength != 13 {
			t.Fatalf("GET /plaintext: %d %q CL=%d", resp.StatusCode, b, resp.ContentLength)
		}
	}
	// A body of unknown length goes out chunked and comes back whole.
	body := strings.Repeat("0123456789", 10000)
	req, _ := http.NewRequest("POST", "http://"+addr+"/echo", io.NopCloser(strings.NewReader(body)))
	req.ContentLength = -1
	req.Header.Set("Content-Type", "text/x-test")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != body || resp.Header.Get("Content-Type") != "text/x-test" {
		t.Fatalf("chunked POST /echo: %d bytes back, Content-Type %q", len(b), resp.Header.Get("Content-Type"))
	}
	resp, err = client.Get("http://" + addr + "/stream/5?size=1000")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if len(b) != 5000 || len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
		t.Fatalf("GET /stream: %d bytes, Transfer-Encoding %v", len(b), resp.TransferEncoding)
	}
}

func TestServeWithCurl(t *testing.T) {
	curl := testutil.RequireTool(t, "curl")
	addr := startCommand(t)
	out, err := exec.Command(curl, "-sS", "--max-time", "10", "-i",
		"http://"+addr+"/plaintext", "http://"+addr+"/json",
		"-H", "Expect: 100-continue").CombinedOutput()
	if err != nil {
		t.Fatalf("curl: %v\n%s", err, out)
	}
	s := string(out)
	if !strings.Contains(s, "HTTP/1.1 200 OK") || !strings.Contains(s, "Hello, World!") || !strings.Contains(s, `{"message":"Hello, World!"}`) {
		t.Fatalf("curl output:\n%s", s)
	}
	// A 200 KiB upload: curl sends Expect: 100-continue for large bodies.
	cmd := exec.Command(curl, "-sS", "--max-time", "10", "--data-binary", "@-", "http://"+addr+"/echo")
	cmd.Stdin = strings.NewReader(strings.Repeat("u", 200<<10))
	out, err = cmd.Output()
	if err != nil || len(out) != 200<<10 {
		t.Fatalf("curl 200 KiB upload: %v, %d bytes back", err, len(out))
	}
}

func TestServeWithPython(t *testing.T) {
	py := testutil.RequireTool(t, "python3")
	addr := startCommand(t)
	host, port, _ := strings.Cut(addr, ":")
	script := `
import http.client, sys
c = http.client.HTTPConnection(sys.argv[1], int(sys.argv[2]), timeout=10)
for path in ("/plaintext", "/json", "/bytes/70000"):
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    print(r.status, path, len(body))
c.request("POST", "/echo", body=b"x" * 100000, headers={"Content-Type": "text/plain"})
r = c.getresponse()
print(r.status, "/echo", len(r.read()))
c.request("HEAD", "/plaintext")
r = c.getresponse()
print(r.status, "HEAD", r.getheader("Content-Length"), len(r.read()))
`
	out, err := exec.Command(py, "-c", script, host, port).CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	want := "200 /plaintext 13\n200 /json 27\n200 /bytes/70000 70000\n200 /echo 100000\n200 HEAD 13 0\n"
	if string(out) != want {
		t.Fatalf("python http.client:\n got: %q\nwant: %q", out, want)
	}
}
