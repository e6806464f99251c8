package adapter

import (
	"net/url"
	"reflect"
	"testing"
)

// targetSeeds are request-targets the fast path takes or must refuse.
var targetSeeds = []string{
	"/", "/plaintext", "/a/b/c.txt", "/a?b=1&c=2", "/a?", "/a??", "/a?b?", "/?", "//double", "///triple",
	"/p;params=1", "/user@host:8080/x", "/~user/$file+x,y", "/a%20b", "/a b", "/a#frag", "/a?q#frag",
	"/é", "/a?é", "/a!b", "/a*b", "/(x)", "/'q'", "/a\"b", "/a?x=%zz", "/a?\x7f", "/a\x00",
	"*", "http://example.com/x?y", "example.com:443", "", "?", "/a?b=c?d", "/%2F", "/a?q=a+b",
}

// TestPlainTarget: for every seed the fast path takes, its URL is exactly
// url.ParseRequestURI's; and it takes the common shapes.
func TestPlainTarget(t *testing.T) {
	for _, s := range targetSeeds {
		checkPlainTarget(t, s)
	}
	for _, s := range []string{"/", "/plaintext", "/a?b=1&c=2", "/a?", "/a??", "//double", "/a?é", "/a?x=%zz"} {
		if !plainTarget(new(url.URL), s) {
			t.Errorf("%q: not taken by the fast path", s)
		}
	}
	for _, s := range []string{"/a%20b", "/a b", "/a#frag", "/é", "/a!b", "*", "http://example.com/x?y", "", "/a?\x7f"} {
		if plainTarget(new(url.URL), s) {
			t.Errorf("%q: taken by the fast path", s)
		}
	}
}

func checkPlainTarget(t *testing.T, s string) {
	t.Helper()
	var got url.URL
	if !plainTarget(&got, s) {
		return
	}
	want, err := url.ParseRequestURI(s)
	if err != nil {
		t.Fatalf("%q: fast path took a target net/url refuses (%v)", s, err)
	}
	if !reflect.DeepEqual(&got, want) {
		t.Fatalf("%q: fast path gave %#v, net/url %#v", s, got, *want)
	}
}

// FuzzPlainTarget holds the fast path equal to url.ParseRequestURI on
// every target it takes.
func FuzzPlainTarget(f *testing.F) {
	for _, s := range targetSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkPlainTarget(t, s) })
}
