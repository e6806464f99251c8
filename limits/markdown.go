package limits

import (
	"fmt"
	"strings"
)

// Markdown renders the option table as docs/options.md.
func Markdown() string {
	var b strings.Builder
	b.WriteString("# Options\n\n")
	b.WriteString("Generated from the fields of `limits.Options` (their tags and comments, in `limits/options.go`) ")
	b.WriteString("by `go test ./limits -update`; a test fails when this file is out of date.\n\n")
	b.WriteString("Every option is a field of `limits.Options` (start from `limits.Default()`), ")
	b.WriteString("a `--kebab-case` flag of the `waitron` command (booleans also as `--no-…`), ")
	b.WriteString("and can be set by name with `Options.Set` or in the `[server:main]` section of an ini file (`--config`). ")
	b.WriteString("`Validate()` reports every problem at once, each an `*limits.OptionError`. ")
	b.WriteString("A duration is a `time.Duration` from Go; by name it is waitress's integer seconds, or a Go duration such as `1m30s`.\n\n")
	b.WriteString("| option | flag | type | default | unit | bounds | meaning |\n|---|---|---|---|---|---|---|\n")
	for _, o := range table {
		def := o.Default
		if def == "" {
			def = `""`
		}
		flag := o.Flag()
		if o.Kind == Bool {
			flag = "--[no-]" + strings.TrimPrefix(flag, "--")
		}
		var bounds string
		switch {
		case o.Min != "" && o.Max != "":
			bounds = o.Min + "–" + o.Max
		case o.Min != "":
			bounds = "≥ " + o.Min
		case len(o.Choices) > 0:
			bounds = strings.Join(o.Choices, ", ")
		}
		fmt.Fprintf(&b, "| `%s` | `%s` | %s | `%s` | %s | %s | %s |\n", o.Name, flag, o.Kind, def, o.Unit, bounds, o.Doc)
	}
	return b.String()
}
