package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/waitron/waitron/internal/arena"
)

// TestHttpArenaEntrypoint: the command line of deploy/httparena's
// Dockerfile (on a loopback port instead of 0.0.0.0:8080), with its data
// in DATA_DIR as HttpArena mounts it, serves the arena app; and meta.json
// is the entry's metadata.
func TestHttpArenaEntrypoint(t *testing.T) {
	b, err := os.ReadFile("../../deploy/httparena/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^ENTRYPOINT (\[.*\])$`).FindSubmatch(b)
	if m == nil {
		t.Fatal("the Dockerfile has no ENTRYPOINT in exec form")
	}
	var argv []string
	if err := json.Unmarshal(m[1], &argv); err != nil {
		t.Fatal(err)
	}
	var args []string
	for i := 1; i < len(argv); i++ {
		if argv[i] == "--listen" {
			if argv[i+1] != "0.0.0.0:8080" {
				t.Errorf("the entry listens on %s, not HttpArena's 0.0.0.0:8080", argv[i+1])
			}
			i++
			continue
		}
		args = append(args, argv[i])
	}
	dir := t.TempDir()
	if err := arena.Generate(dir); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DATA_DIR", dir)
	addr := startCommand(t, args...)
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	for path, want := range map[string]string{"/baseline11?a=13&b=42": "55", "/pipeline": "ok"} {
		resp, err := client.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != want {
			t.Errorf("%s: %d %q, want %q", path, resp.StatusCode, body, want)
		}
	}
	var meta struct {
		Type  string   `json:"type"`
		Tests []string `json:"tests"`
	}
	mb, err := os.ReadFile("../../deploy/httparena/meta.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(mb, &meta); err != nil || meta.Type != "production" || len(meta.Tests) == 0 {
		t.Errorf("meta.json: %v %+v", err, meta)
	}
}
