package testutil

import (
	"testing"

	"github.com/waitron/waitron/internal/certgen"
)

// Certs is a test PKI (certgen.Set) in the test's temporary directory.
type Certs = certgen.Set

// NewCerts makes a Certs for the test.
func NewCerts(t testing.TB) *Certs {
	t.Helper()
	s, err := certgen.Generate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}
