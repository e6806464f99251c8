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

// TestCIRunsREADMECommands: the test command the README gives is the one
// .ci/run runs, and .ci/run also starts the README's go run command.
func TestCIRunsREADMECommands(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	ci, err := os.ReadFile(".ci/run")
	if err != nil {
		t.Fatal(err)
	}
	const test = "go test -race ./... && (cd tests && go test -race ./...)"
	for _, want := range []string{test, "go run ./cmd/waitron"} {
		if !strings.Contains(string(readme), "\n"+want) {
			t.Errorf("README.md has no command %q", want)
		}
		if !strings.Contains(string(ci), "\n"+want) && !strings.Contains(string(ci), " "+want) {
			t.Errorf(".ci/run does not run %q", want)
		}
	}
}
