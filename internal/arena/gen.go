package arena

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
)

// StaticFiles are the names and sizes of the files Generate writes to
// static/, HttpArena's set: fifteen text files, which get .gz and .br
// siblings, and five already-compressed binary ones, which do not.
var StaticFiles = []struct {
	Name string
	Size int
}{
	{"index.html", 12 << 10}, {"about.html", 6 << 10}, {"docs.html", 48 << 10},
	{"app.js", 96 << 10}, {"vendor.js", 300 << 10}, {"runtime.js", 4 << 10},
	{"main.css", 40 << 10}, {"theme.css", 8 << 10}, {"reset.css", 3 << 10},
	{"logo.svg", 5 << 10}, {"icons.svg", 24 << 10}, {"chart.svg", 60 << 10},
	{"manifest.json", 3 << 10}, {"data.json", 120 << 10}, {"config.json", 10 << 10},
	{"hero.webp", 200 << 10}, {"thumb1.webp", 16 << 10}, {"thumb2.webp", 20 << 10},
	{"bold.woff2", 30 << 10}, {"regular.woff2", 28 << 10},
}

// Generate writes, under dir, data of the shape HttpArena mounts:
// dataset.json (50 items), dataset-large.json (6,000) and static/ with
// StaticFiles (and the text files' .gz and .br siblings). The content is
// the same on every call.
func Generate(dir string) error {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, d := range []struct {
		name string
		n    int
	}{{"dataset.json", 50}, {"dataset-large.json", 6000}} {
		b, err := json.MarshalIndent(items(rng, d.n), "", "  ")
		if err != nil {
			return err
		}
		if err := writeFile(filepath.Join(dir, d.name), b); err != nil {
			return err
		}
	}
	static := filepath.Join(dir, "static")
	if err := os.MkdirAll(static, 0o755); err != nil {
		return err
	}
	for _, f := range StaticFiles {
		path := filepath.Join(static, f.Name)
		switch ext := filepath.Ext(f.Name); ext {
		case ".webp", ".woff2":
			b := make([]byte, f.Size)
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
			if err := writeFile(path, b); err != nil {
				return err
			}
		default:
			b := text(rng, ext, f.Size)
			if err := writeFile(path, b); err != nil {
				return err
			}
			for _, enc := range []struct{ ext, name string }{{".gz", "gzip"}, {".br", "br"}} {
				var z bytes.Buffer
				if err := compress(&z, enc.name, b); err != nil {
					return err
				}
				if err := writeFile(path+enc.ext, z.Bytes()); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func writeFile(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

var (
	words      = strings.Fields("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu")
	categories = []string{"electronics", "books", "garden", "toys", "sports", "kitchen", "music", "office"}
)

func items(rng *rand.Rand, n int) []Item {
	out := make([]Item, n)
	for i := range out {
		tags := make([]string, 1+rng.IntN(4))
		for j := range tags {
			tags[j] = words[rng.IntN(len(words))]
		}
		out[i] = Item{
			ID:       i + 1,
			Name:     fmt.Sprintf("%s %s %d", words[rng.IntN(len(words))], words[rng.IntN(len(words))], i+1),
			Category: categories[rng.IntN(len(categories))],
			Price:    1 + rng.IntN(500),
			Quantity: 1 + rng.IntN(100),
			Active:   rng.IntN(4) != 0,
			Tags:     tags,
			Rating:   Rating{Score: 1 + rng.IntN(5), Count: rng.IntN(10000)},
		}
	}
	return out
}

// text makes size bytes of compressible text in the shape of a file of
// type ext.
func text(rng *rand.Rand, ext string, size int) []byte {
	var b bytes.Buffer
	line := func() string {
		n := 3 + rng.IntN(8)
		w := make([]string, n)
		for i := range w {
			w[i] = words[rng.IntN(len(words))]
		}
		return strings.Join(w, " ")
	}
	for i := 0; b.Len() < size; i++ {
		switch ext {
		case ".html":
			fmt.Fprintf(&b, "<p class=\"c%d\">%s</p>\n", i%7, line())
		case ".js":
			fmt.Fprintf(&b, "function f%d(a, b) { return %q + a * b; }\n", i, line())
		case ".css":
			fmt.Fprintf(&b, ".c%d { margin: %dpx; color: #%06x; } /* %s */\n", i, i%32, rng.IntN(1<<24), line())
		case ".svg":
			fmt.Fprintf(&b, "<path d=\"M%d %d L%d %d\" stroke=\"#%06x\"/>\n", rng.IntN(512), rng.IntN(512), rng.IntN(512), rng.IntN(512), rng.IntN(1<<24))
		default:
			fmt.Fprintf(&b, "{\"k%d\": %q},\n", i, line())
		}
	}
	return b.Bytes()[:size]
}
