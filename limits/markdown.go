package limits

import (
	"fmt"
	"strings"
)

// Markdown renders the option table as docs/options.md.
func Markdown() string {
	var b strings.Builder
	b.WriteString("# Options\n\n")
	b.WriteString("Generated from the option table in `limits/options.go` by `go test ./limits -update`; ")
	b.WriteString("a test fails when this file is out of date.\n\n")
	b.WriteString("Every option is a field of `limits.Options` (start from `limits.Default()`), ")
	b.WriteString("a `--kebab-case` flag of the `waitron` command (booleans also as `--no-…`), ")
	b.WriteString("and can be set by name with `Options.Set`. `Validate()` reports every problem at once.\n\n")
	b.WriteString("| option | flag | type | default | unit | meaning |\n|---|---|---|---|---|---|\n")
	kinds := map[Kind]string{Int: "int", Bool: "bool", Str: "string", List: "list"}
	for _, o := range table {
		def := o.Default
		if def == "" {
			def = `""`
		}
		flag := o.Flag()
		if o.Kind == Bool {
			flag = "--[no-]" + strings.TrimPrefix(flag, "--")
		}
		fmt.Fprintf(&b, "| `%s` | `%s` | %s | `%s` | %s | %s |\n", o.Name, flag, kinds[o.Kind], def, o.Unit, o.Doc)
	}
	return b.String()
}
