package engine_test

import (
	"fmt"
	"os"
	"testing"

	gnetpool "github.com/panjf2000/gnet/v2/pkg/pool/goroutine"
	"go.uber.org/goleak"
)

// TestMain fails the package if any test leaves a goroutine behind once
// its servers are shut down. Goroutines that exist before any test are not
// ours, nor are the workers of gnet's package-level pool (gnet registers
// the connections of adopted sockets through it), which would linger for
// ten seconds idle: that pool is released once the tests are done, before
// the check (goleak retries while goroutines finish exiting). fasthttp's
// process-wide Date refresher, which its first response starts, is
// fasthttp's and stays by design; so is the cleaner of the reference
// fasthttp servers' worker pools, which sleeps its 10 s out after they
// stop.
func TestMain(m *testing.M) {
	before := goleak.IgnoreCurrent()
	code := m.Run()
	if code == 0 {
		gnetpool.DefaultWorkerPool.Release() // its idle workers exit now
		if err := goleak.Find(before, goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
			goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2")); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
