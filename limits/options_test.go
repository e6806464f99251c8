package limits

import (
	"flag"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite docs/options.md")

func TestOptionsDocCurrent(t *testing.T) {
	const path = "../docs/options.md"
	want := Markdown()
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatal("docs/options.md is out of date: run go test ./limits -update")
	}
}

func TestDefaults(t *testing.T) {
	o := Default()
	if err := o.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	if o.Threads != 4 || o.Port != 8080 || o.Ident != "waitron" || o.MaxRequestBodySize != 1<<30 ||
		o.InbufOverflow != 512<<10 || strings.Join(o.ListenAddrs(), " ") != "0.0.0.0:8080" {
		t.Fatalf("defaults: %+v", o)
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		set  []string
		want []string // every message expected; none when empty
	}{
		{nil, nil},
		{[]string{"threads", "0"}, []string{"threads must be at least 1, got 0"}},
		{[]string{"threads", "-2", "recv_bytes", "0"}, []string{"threads must be at least 1", "recv_bytes must be at least 1"}},
		{[]string{"port", "70000"}, []string{"port must be between 0 and 65535"}},
		{[]string{"listen", "127.0.0.1:1", "host", "::1"}, []string{"host or port may not be set if listen is set"}},
		{[]string{"host", "127.0.0.1", "port", "9"}, nil},
		{[]string{"unix_socket", "/tmp/x.sock", "port", "1"}, []string{"unix_socket may not be set if host or port is set"}},
		{[]string{"unix_socket", "/tmp/x.sock", "listen", "127.0.0.1:1"}, []string{"unix_socket may not be set if listen is set"}},
		{[]string{"unix_socket_perms", "1777"}, []string{"unix_socket_perms must be between 000 and 777"}},
		{[]string{"ipv4", "false", "ipv6", "off"}, []string{"ipv4 and ipv6 may not both be false"}},
		{[]string{"trusted_proxy_count", "2"}, []string{"trusted_proxy_count has no meaning without setting trusted_proxy"}},
		{[]string{"trusted_proxy_headers", "x-forwarded-for"}, []string{"trusted_proxy_headers has no meaning without setting trusted_proxy"}},
		{[]string{"trusted_proxy", "127.0.0.1", "trusted_proxy_headers", "x-real-ip"}, []string{"Received unknown trusted_proxy_headers value (x-real-ip)"}},
		{[]string{"trusted_proxy", "*", "trusted_proxy_headers", "Forwarded X-Forwarded-For"}, []string{"mutually exclusive"}},
		{[]string{"trusted_proxy", "10.0.0.0/8 ::1 localhost", "trusted_proxy_count", "2", "trusted_proxy_headers", "forwarded"}, nil},
		{[]string{"trusted_proxy", "10.0.0.0/33 proxy.example"}, []string{`"10.0.0.0/33" is not an address`, `"proxy.example" is not an address`}},
		{[]string{"trusted_proxy", "*", "trusted_proxy_count", "0"}, []string{"trusted_proxy_count must be at least 1"}},
		// Every problem at once.
		{[]string{"threads", "0", "listen", "127.0.0.1:1", "port", "2", "ipv4", "no", "ipv6", "no"},
			[]string{"threads must be at least 1", "host or port may not be set if listen is set", "ipv4 and ipv6 may not both be false"}},
	}
	for _, tc := range cases {
		o := Default()
		for i := 0; i < len(tc.set); i += 2 {
			if err := o.Set(tc.set[i], tc.set[i+1]); err != nil {
				t.Fatalf("Set(%s, %s): %v", tc.set[i], tc.set[i+1], err)
			}
		}
		err := o.Validate()
		if len(tc.want) == 0 {
			if err != nil {
				t.Errorf("%v: unexpected %v", tc.set, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%v: no error", tc.set)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: %q lacks %q", tc.set, err, w)
			}
		}
	}
}

func TestParsing(t *testing.T) {
	o := Default()
	for _, ok := range [][2]string{{"threads", " 1_0 "}, {"expose_tracebacks", "YES"}, {"max-request-body-size", "+5"}} {
		if err := o.Set(ok[0], ok[1]); err != nil {
			t.Errorf("Set(%q, %q): %v", ok[0], ok[1], err)
		}
	}
	if o.Threads != 10 || !o.ExposeTracebacks || o.MaxRequestBodySize != 5 {
		t.Errorf("parsed: %+v", o)
	}
	for _, bad := range [][2]string{{"threads", "0x10"}, {"threads", "1__0"}, {"threads", ""}, {"expose_tracebacks", "nope"},
		{"expose_tracebacks", "2"}, {"nonexistent", "1"}} {
		if err := o.Set(bad[0], bad[1]); err == nil {
			t.Errorf("Set(%q, %q) accepted", bad[0], bad[1])
		}
	}
	o = Default()
	o.Set("listen", "127.0.0.1:1")
	o.Set("listen", "[::1]:2 localhost:3")
	if got := strings.Join(o.ListenAddrs(), " "); got != "127.0.0.1:1 [::1]:2 localhost:3" {
		t.Errorf("repeated listen: %q", got)
	}
}

// Every list option takes repetition (each adds) and space- or
// comma-separated values alike; repeating one never panics.
func TestListOptionsRepeat(t *testing.T) {
	for _, opt := range Table() {
		if opt.Kind != List {
			continue
		}
		o := Default()
		for _, v := range []string{"a b", "c,d", " e , f "} {
			if err := o.Set(opt.Name, v); err != nil {
				t.Fatalf("%s=%q: %v", opt.Name, v, err)
			}
		}
		if got := o.Get(opt.Name); got != "a b c d e f" {
			t.Errorf("%s after three settings: %q, want \"a b c d e f\"", opt.Name, got)
		}
	}
}

// The operator options are checked like the others.
func TestOperatorOptionsValidated(t *testing.T) {
	for opt, v := range map[string]string{"access_log_format": "xml", "metrics_listen": "no-port"} {
		o := Default()
		if err := o.Set(opt, v); err != nil {
			t.Fatal(err)
		}
		if err := o.Validate(); err == nil || !strings.Contains(err.Error(), opt) {
			t.Errorf("%s=%q: Validate() = %v, want an error naming it", opt, v, err)
		}
	}
}

// The conflict rules hold for a Go program that sets fields, as for Set.
func TestConflictsFromGo(t *testing.T) {
	cases := map[string]func(o *Options){
		"host or port may not be set if listen is set": func(o *Options) { o.Host, o.Listen = "127.0.0.1", []string{"127.0.0.1:9000"} },
		"unix_socket may not be set if listen is set":  func(o *Options) { o.UnixSocket, o.Listen = "/tmp/x.sock", []string{"127.0.0.1:9000"} },
		"unix_socket may not be set if host or port":   func(o *Options) { o.UnixSocket, o.Port = "/tmp/x.sock", 9000 },
	}
	for want, set := range cases {
		o := Default()
		set(&o)
		if err := o.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: Validate() = %v", want, err)
		}
	}
	o := Default()
	o.Port = 9000 // alone: fine, and it is what is listened on
	if err := o.Validate(); err != nil || strings.Join(o.ListenAddrs(), " ") != "0.0.0.0:9000" {
		t.Errorf("port alone: %v, %v", err, o.ListenAddrs())
	}
}
