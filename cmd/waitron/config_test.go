package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/waitron/waitron/internal/targetapp"
	"github.com/waitron/waitron/limits"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "app.ini")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestConfigEqualsFlags: a config file and the equivalent flags give the
// same options, option by option.
func TestConfigEqualsFlags(t *testing.T) {
	ini := writeConfig(t, `# a PasteDeploy file
[app:main]
use = egg:myapp
threads = 99

[server:main]
use = egg:waitron#main
listen = 127.0.0.1:7001
    [::1]:7002
threads = 6
ident = from-file
expose_tracebacks = yes
url_prefix = /mounted/
url_scheme = https
server_name = example.test
ipv6 = on
max_request_body_size = 1_000_000
`)
	fromFile, _, _, err := parseArgs([]string{"--config", ini})
	if err != nil {
		t.Fatal(err)
	}
	fromFlags, _, _, err := parseArgs([]string{"--listen", "127.0.0.1:7001", "--listen", "[::1]:7002", "--threads", "6",
		"--ident", "from-file", "--expose-tracebacks", "--url-prefix", "/mounted/", "--url-scheme", "https",
		"--server-name", "example.test", "--ipv6", "--max-request-body-size", "1_000_000"})
	if err != nil {
		t.Fatal(err)
	}
	for _, opt := range limits.Table() {
		if a, b := fromFile.Get(opt.Name), fromFlags.Get(opt.Name); a != b {
			t.Errorf("%s: config file gives %q, flags give %q", opt.Name, a, b)
		}
	}
	// Flags override the file; a list given by a flag replaces the file's.
	o, _, _, err := parseArgs([]string{"--config", ini, "--threads", "2", "--listen", "127.0.0.1:7003"})
	if err != nil {
		t.Fatal(err)
	}
	if o.Threads != 2 || strings.Join(o.ListenAddrs(), " ") != "127.0.0.1:7003" || o.Ident != "from-file" {
		t.Errorf("flags over file: threads=%d listen=%v ident=%q", o.Threads, o.ListenAddrs(), o.Ident)
	}
}

func TestConfigErrors(t *testing.T) {
	cases := map[string]string{
		"[server:main]\nthreads = many\n":     `app.ini:2: threads: "many" is not an integer`,
		"[server:main]\nno_such_option = 1\n": `app.ini:2: unknown option "no_such_option"`,
		"[app:main]\nthreads = 1\n":           "no [server:main] section",
		"[server:main]\njust words\n":         "app.ini:2: expected key = value",
		"[server:main]\nthreads = 0\n":        "threads must be at least 1",
	}
	for body, want := range cases {
		_, _, _, err := parseArgs([]string{"--config", writeConfig(t, body)})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", body, err, want)
		}
	}
	if _, _, _, err := parseArgs([]string{"--config", "/no/such/file.ini"}); err == nil {
		t.Error("a missing config file is accepted")
	}
}

// TestConfigTakesEffect serves with a config file and checks on the wire
// that its options (and a flag over it) are in force.
func TestConfigTakesEffect(t *testing.T) {
	ini := writeConfig(t, "[server:main]\nident = from-file\nurl_prefix = app\nurl_scheme = https\nserver_name = example.test\n")
	addr := startCommand(t, "--config", ini, "--ident", "from-flag")
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get("http://" + addr + "/app/request/x%2Fy?q=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var info targetapp.RequestInfo
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("Server") != "from-flag" {
		t.Errorf("Server = %q, want the flag's value", resp.Header.Get("Server"))
	}
	if info.ScriptName != "/app" || info.Path != "/request/x/y" || info.RawPath != "/request/x%2Fy" ||
		info.RequestURI != "/app/request/x%2Fy?q=1" || info.Scheme != "https" {
		t.Errorf("request as seen: %+v", info)
	}
	// Outside the prefix: not stripped, no script name.
	resp2, err := client.Get("http://" + addr + "/application")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp2.Body)
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusNotFound {
		t.Errorf("/application: %d, want 404 from the app (path outside the prefix)", resp2.StatusCode)
	}
}
