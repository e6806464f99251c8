// Command arenadata writes data of the shape HttpArena mounts under /data
// (dataset.json, dataset-large.json, static/ with 20 files and the text
// files' .gz and .br siblings), for `waitron --app arena` and the
// benchmarks:
//
//	go run ./benchmarks/arenadata -dir /tmp/arena-data
//	go run ./cmd/waitron --app arena --data-dir /tmp/arena-data
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/waitron/waitron/internal/arena"
)

func main() {
	dir := flag.String("dir", "", "the directory to write (created if missing)")
	flag.Parse()
	if *dir == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: arenadata -dir DIR")
		os.Exit(2)
	}
	if err := arena.Generate(*dir); err != nil {
		fmt.Fprintf(os.Stderr, "arenadata: %v\n", err)
		os.Exit(1)
	}
}
