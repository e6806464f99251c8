package engine

import (
	"context"
	"strings"
	"testing"
)

func TestListenURLs(t *testing.T) {
	cases := []struct {
		entries []string
		want    string
	}{
		{[]string{"127.0.0.1:8000"}, "tcp4://127.0.0.1:8000"},
		{[]string{"127.0.0.1"}, "tcp4://127.0.0.1:8080"},
		{[]string{"[::1]:9000", "[::1]"}, "tcp6://[::1]:9000 tcp6://[::1]:8080"},
		{[]string{"::1"}, "tcp6://[::1]:8080"},
		{[]string{"*:81"}, "tcp4://0.0.0.0:81 tcp6://[::]:81"},
		{[]string{"127.0.0.1:http"}, "tcp4://127.0.0.1:80"},
		{[]string{"127.0.0.1:1", "127.0.0.1:1"}, "tcp4://127.0.0.1:1"},
		{[]string{"127.0.0.1:0", "127.0.0.1:0"}, "tcp4://127.0.0.1:0 tcp4://127.0.0.1:0"},
	}
	for _, tc := range cases {
		urls, err := listenURLs(context.Background(), tc.entries, 8080, true, true)
		if err != nil {
			t.Errorf("%v: %v", tc.entries, err)
			continue
		}
		if got := strings.Join(urls, " "); got != tc.want {
			t.Errorf("%v: %q, want %q", tc.entries, got, tc.want)
		}
	}
	// localhost resolves to every address it has, at least the IPv4 one.
	urls, err := listenURLs(context.Background(), []string{"localhost:7"}, 8080, true, true)
	if err != nil || !strings.Contains(strings.Join(urls, " "), "tcp4://127.0.0.1:7") {
		t.Errorf("localhost: %v %v", urls, err)
	}
	for _, bad := range []string{"127.0.0.1:99999", "127.0.0.1:nosuchservice", "no.such.host.invalid:1"} {
		if _, err := listenURLs(context.Background(), []string{bad}, 8080, true, true); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestListenFamilies(t *testing.T) {
	cases := []struct {
		entry      string
		ipv4, ipv6 bool
		want       string // "" means an error
	}{
		{"*:1", true, false, "tcp4://0.0.0.0:1"},
		{"*:1", false, true, "tcp6://[::]:1"},
		{"127.0.0.1:1", false, true, ""},
		{"[::1]:1", true, false, ""},
		{"localhost:1", true, false, "tcp4://127.0.0.1:1"},
	}
	for _, tc := range cases {
		urls, err := listenURLs(context.Background(), []string{tc.entry}, 8080, tc.ipv4, tc.ipv6)
		got := strings.Join(urls, " ")
		if tc.want == "" && err == nil || tc.want != "" && got != tc.want {
			t.Errorf("%s ipv4=%v ipv6=%v: %q, %v; want %q", tc.entry, tc.ipv4, tc.ipv6, got, err, tc.want)
		}
	}
}
