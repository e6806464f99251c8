package engine

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// workerSide are the types whose methods run on workers (or on goroutines
// of their own: the output spool's feeder, the half-closed client's
// fallback writer), and the functions that do.
var (
	workerSideTypes = []string{"writer", "turn", "batch", "outSpool", "fallback", "worker"}
	workerSideFuncs = []string{"env.serve", "env.serveBatch", "env.account", "env.logServed", "request.run", "recycle", "release", "rest"}
)

// crossings are the calls whose function literals run on the loop with
// its conn: the one way over.
var crossings = []string{"onLoop", "atLoop"}

// TestWorkerSideNamesNoConn: code that runs on the worker side never names
// the loop's type (conn) outside a function literal it hands to onLoop or
// atLoop, so the only way from a worker to the loop's state is that
// visible call; and what a worker holds (writer, turn, batch) has no field
// of a loop-owned type.
func TestWorkerSideNamesNoConn(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Body == nil || !workerSide(fd) {
				continue
			}
			checked++
			ast.Inspect(fd.Body, func(n ast.Node) bool {
				if call, ok := n.(*ast.CallExpr); ok && isCrossing(call) {
					// The literals handed over run on the loop; the rest
					// of the call (its receiver) is still checked.
					ast.Inspect(call.Fun, func(m ast.Node) bool { return checkIdent(t, fset, fd, m) })
					for _, a := range call.Args {
						if _, lit := a.(*ast.FuncLit); !lit {
							ast.Inspect(a, func(m ast.Node) bool { return checkIdent(t, fset, fd, m) })
						}
					}
					return false
				}
				return checkIdent(t, fset, fd, n)
			})
		}
	}
	if checked < 20 {
		t.Fatalf("only %d worker-side functions found: the lists above are out of date", checked)
	}
	for _, typ := range []reflect.Type{reflect.TypeFor[writer](), reflect.TypeFor[turn](), reflect.TypeFor[batch]()} {
		for i := range typ.NumField() {
			if ft := typ.Field(i).Type; holds(ft, reflect.TypeFor[conn]()) || holds(ft, reflect.TypeFor[loopConns]()) {
				t.Errorf("%s.%s holds loop-owned state (%s)", typ.Name(), typ.Field(i).Name, ft)
			}
		}
	}
}

func workerSide(fd *ast.FuncDecl) bool {
	recv := ""
	if fd.Recv != nil && len(fd.Recv.List) == 1 {
		typ := fd.Recv.List[0].Type
		if st, ok := typ.(*ast.StarExpr); ok {
			typ = st.X
		}
		if id, ok := typ.(*ast.Ident); ok {
			recv = id.Name
		}
	}
	if recv == "writer" && isCrossingName(fd.Name.Name) {
		return false // the crossing itself
	}
	for _, w := range workerSideTypes {
		if recv == w {
			return true
		}
	}
	name := fd.Name.Name
	if recv != "" {
		name = recv + "." + name
	}
	for _, w := range workerSideFuncs {
		if name == w {
			return true
		}
	}
	return false
}

func isCrossingName(name string) bool {
	for _, c := range crossings {
		if name == c {
			return true
		}
	}
	return false
}

func isCrossing(call *ast.CallExpr) bool {
	sel, ok := call.Fun.(*ast.SelectorExpr)
	return ok && isCrossingName(sel.Sel.Name)
}

func checkIdent(t *testing.T, fset *token.FileSet, fd *ast.FuncDecl, n ast.Node) bool {
	if id, ok := n.(*ast.Ident); ok && (id.Name == "conn" || id.Name == "loopConns") {
		t.Errorf("%s: %s (worker side) names %s outside onLoop/atLoop", fset.Position(id.Pos()), fd.Name.Name, id.Name)
	}
	return true
}

// holds reports whether a value of type typ can point to a want.
func holds(typ, want reflect.Type) bool {
	switch typ.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return typ.Elem() == want || holds(typ.Elem(), want)
	case reflect.Map:
		return holds(typ.Key(), want) || holds(typ.Elem(), want)
	}
	return typ == want
}
