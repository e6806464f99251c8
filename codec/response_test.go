package codec_test

import (
	"testing"

	"github.com/waitron/waitron/codec"
)

// TestAppendField: a field's value is copied as is unless it holds control
// characters, which become SP (tab stays), so a handler's header cannot
// split the response; a name that is not a token is dropped.
func TestAppendField(t *testing.T) {
	for _, c := range []struct{ name, value, want string }{
		{"Content-Type", "text/plain", "Content-Type: text/plain\r\n"},
		{"X-Empty", "", "X-Empty: \r\n"},
		{"X-Split", "a\r\nInjected: yes", "X-Split: a  Injected: yes\r\n"},
		{"X-Ends", "a\n", "X-Ends: a \r\n"},
		{"X-Starts", "\x00b", "X-Starts:  b\r\n"},
		{"X-Tab", "a\tb\x7f", "X-Tab: a\tb \r\n"},
		{"Bad Name", "v", ""},
		{"", "v", ""},
	} {
		if got := string(codec.AppendField([]byte(">"), c.name, c.value)); got != ">"+c.want {
			t.Errorf("AppendField(%q, %q) = %q, want %q", c.name, c.value, got, ">"+c.want)
		}
	}
}
