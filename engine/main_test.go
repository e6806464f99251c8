package engine_test

import (
	"fmt"
	"os"
	"testing"
	"time"

	gnetpool "github.com/panjf2000/gnet/v2/pkg/pool/goroutine"
	"go.uber.org/goleak"
)

// TestMain fails the package if any test leaves a goroutine behind once
// its servers are shut down. Goroutines that exist before any test are not
// ours, nor are the workers of gnet's package-level pool (gnet registers
// the connections of adopted sockets through it), which would linger for
// ten seconds idle: that pool is released once the tests are done, and the
// check retried while goroutines finish exiting (at most 5 s).
func TestMain(m *testing.M) {
	before := goleak.IgnoreCurrent()
	code := m.Run()
	if code == 0 {
		gnetpool.DefaultWorkerPool.Release()
		err := goleak.Find(before)
		for deadline := time.Now().Add(5 * time.Second); err != nil && time.Now().Before(deadline); {
			time.Sleep(100 * time.Millisecond)
			err = goleak.Find(before)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
