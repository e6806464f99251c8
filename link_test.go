package waitron_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestNetHTTPProgramLinksNoFasthttp: a program of net/http handlers links
// no fasthttp (the fasthttp adapter is a package of its own), so it pays
// nothing for it, at start-up or when another dependency moves fasthttp's
// version.
func TestNetHTTPProgramLinksNoFasthttp(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a program")
	}
	bin := filepath.Join(t.TempDir(), "nethttponly")
	if out, err := exec.Command("go", "build", "-o", bin, "./testdata/nethttponly").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command("go", "tool", "nm", bin).Output()
	if err != nil {
		t.Fatalf("go tool nm: %v", err)
	}
	syms := string(out)
	if !strings.Contains(syms, "github.com/waitron/waitron/engine.") {
		t.Fatal("the program does not link waitron's engine: the check looks at the wrong binary")
	}
	if strings.Contains(syms, "valyala/fasthttp") {
		t.Error("a net/http-only program links fasthttp")
	}
}
