package engine_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any test leaves a goroutine behind once
// its servers are shut down. Goroutines that exist before any test — gnet's
// own package-level worker pool, started by its init — are not ours.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreCurrent())
}
