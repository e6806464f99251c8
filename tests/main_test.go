package tests

import (
	"os"
	"testing"

	"github.com/waitron/waitron/internal/testutil"
)

// TestMain fails the package if any test leaves a goroutine behind
// (testutil.RunCheckingLeaks).
func TestMain(m *testing.M) { os.Exit(testutil.RunCheckingLeaks(m)) }
