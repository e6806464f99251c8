package limits

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// LoadConfig applies the [server:main] section of a PasteDeploy-style INI
// file: "key = value" (or "key: value") lines with waitress's option names,
// "#" and ";" comment lines, and indented continuation lines (a multi-line
// listen). The key "use" is ignored. Unknown keys and bad values are
// errors naming the file and line.
func (o *Options) LoadConfig(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	type entry struct {
		key, value string
		line       int
	}
	var (
		entries []entry
		section string
		found   bool
		n       int
	)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
		raw := sc.Text()
		line := strings.TrimSpace(raw)
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
			continue
		case raw[0] == ' ' || raw[0] == '\t':
			if section == "server:main" && len(entries) > 0 {
				entries[len(entries)-1].value += "\n" + line
			}
			continue
		case line[0] == '[':
			if !strings.HasSuffix(line, "]") {
				return fmt.Errorf("%s:%d: malformed section header %q", path, n, line)
			}
			section = strings.TrimSpace(line[1 : len(line)-1])
			found = found || section == "server:main"
			continue
		}
		if section != "server:main" {
			continue
		}
		i := strings.IndexAny(line, "=:")
		if i <= 0 {
			return fmt.Errorf("%s:%d: expected key = value, got %q", path, n, line)
		}
		entries = append(entries, entry{strings.TrimSpace(line[:i]), strings.TrimSpace(line[i+1:]), n})
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if !found {
		return fmt.Errorf("%s: no [server:main] section", path)
	}
	for _, e := range entries {
		if e.key == "use" {
			continue
		}
		if err := o.Set(e.key, e.value); err != nil {
			return fmt.Errorf("%s:%d: %w", path, e.line, err)
		}
	}
	return nil
}

// Override sets in o every option that was given in from (through Set),
// replacing rather than extending lists: command-line flags override a
// config file this way.
func (o *Options) Override(from *Options) error {
	for _, opt := range table {
		spelled, ok := from.given[opt.Name]
		if !ok {
			continue
		}
		delete(o.given, opt.Name)
		if err := o.Set(spelled, opt.get(from)); err != nil {
			return err
		}
	}
	return nil
}
