package waitron_test

import (
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/waitron/waitron"
)

// TestNetHTTPProgramLinksNoFasthttp: a program of net/http handlers links
// no fasthttp (the fasthttp adapter is a package of its own), so it pays
// nothing for it, at start-up or when another dependency moves fasthttp's
// version; and, not asking for metrics, no Prometheus code (package
// metrics brings it).
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
	if !strings.Contains(syms, "github.com/waitron/waitron/internal/engine.") {
		t.Fatal("the program does not link waitron's engine: the check looks at the wrong binary")
	}
	if strings.Contains(syms, "valyala/fasthttp") {
		t.Error("a net/http-only program links fasthttp")
	}
	if strings.Contains(syms, "prometheus") {
		t.Error("a program without package metrics links Prometheus code")
	}
}

// TestMetricsListenNeedsThePackage: without package metrics in the
// program, metrics_listen is refused with an error saying what to import,
// never accepted and ignored.
func TestMetricsListenNeedsThePackage(t *testing.T) {
	opts := waitron.DefaultOptions()
	if err := opts.Set("metrics_listen", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	_, err := waitron.NewServer(http.NotFoundHandler(), opts, nil)
	if err == nil || !strings.Contains(err.Error(), `import _ "github.com/waitron/waitron/metrics"`) {
		t.Fatalf("NewServer with metrics_listen: %v", err)
	}
}
