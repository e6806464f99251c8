package waitron_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// docs/deployment.md shows each file of docs/deployment whole, so the
// configurations a reader copies are the ones the tests run.
func TestDocsShowDeploymentFiles(t *testing.T) {
	page, err := os.ReadFile("docs/deployment.md")
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("docs/deployment/*")
	if len(files) == 0 {
		t.Fatal("no files under docs/deployment")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(page), strings.TrimRight(string(b), "\n")+"\n```") {
			t.Errorf("docs/deployment.md does not show %s whole", f)
		}
	}
}
