package sqlcheck

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// vetted are the non-constant SQL fragments that exist on purpose, each
// chosen among constants in code (never from input). A new one must be
// reviewed and added here.
var vetted = map[string]string{
	"workflow/service.go:cond": "the tab's WHERE clause, picked by a switch among constant strings",
}

var skipDirs = map[string]bool{"var": true, ".git": true, "testdata": true, "internal": true, "bench": true, "chaos": true}

// sqlMethods take SQL as their first argument after the context (or first,
// for a batch's Queue).
var sqlMethods = map[string]int{"Exec": 1, "Query": 1, "QueryRow": 1, "Queue": 0}

func TestSQLOnlyThroughParameters(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		// Product code only: test helpers and measuring tools create
		// databases by name, which no parameter can do (they quote the
		// identifiers with pgx.Identifier).
		if d.IsDir() && skipDirs[d.Name()] {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		consts := packageConsts(filepath.Dir(path), fset)
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			i, ok := sqlMethods[sel.Sel.Name]
			if !ok || len(call.Args) <= i {
				return true
			}
			arg := call.Args[i]
			if !looksLikeSQL(arg) {
				return true
			}
			checked++
			if bad := dynamic(arg, consts); bad != "" {
				if _, ok := vetted[filepath.ToSlash(rel)+":"+bad]; !ok {
					t.Errorf("%s: SQL built from %q: use a constant and $n parameters (or vet it in sqlcheck)", fset.Position(arg.Pos()), bad)
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 50 {
		t.Fatalf("only %d SQL statements found: is the walk broken?", checked)
	}
	t.Logf("%d SQL statements checked", checked)
}

// looksLikeSQL tells SQL arguments from other uses of methods named Exec or
// Query: a literal that reads like SQL, or an expression containing one.
func looksLikeSQL(e ast.Expr) bool {
	found := false
	ast.Inspect(e, func(n ast.Node) bool {
		if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
			s := strings.ToUpper(lit.Value)
			for _, kw := range []string{"SELECT ", "INSERT ", "UPDATE ", "DELETE ", "WITH ", "CREATE ", "DROP ", "ALTER "} {
				if strings.Contains(s, kw) {
					found = true
				}
			}
		}
		return !found
	})
	if id, ok := e.(*ast.Ident); ok && id.Obj == nil {
		return false
	}
	return found
}

// dynamic returns the first part of e that is neither a string literal nor a
// package constant, or "".
func dynamic(e ast.Expr, consts map[string]bool) string {
	switch e := e.(type) {
	case *ast.BasicLit:
		return ""
	case *ast.Ident:
		if consts[e.Name] {
			return ""
		}
		return e.Name
	case *ast.BinaryExpr:
		if e.Op != token.ADD {
			return "operator " + e.Op.String()
		}
		if bad := dynamic(e.X, consts); bad != "" {
			return bad
		}
		return dynamic(e.Y, consts)
	case *ast.ParenExpr:
		return dynamic(e.X, consts)
	default:
		return "expression"
	}
}

var constCache = map[string]map[string]bool{}

// packageConsts lists the constants declared in the package of dir.
func packageConsts(dir string, fset *token.FileSet) map[string]bool {
	if c, ok := constCache[dir]; ok {
		return c
	}
	c := map[string]bool{}
	// The package's files one by one (parser.ParseDir is deprecated); a file
	// that does not parse adds no constant, and the walk reports it.
	files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			continue
		}
		for _, d := range f.Decls {
			if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.CONST {
				for _, s := range g.Specs {
					for _, n := range s.(*ast.ValueSpec).Names {
						c[n.Name] = true
					}
				}
			}
		}
	}
	constCache[dir] = c
	return c
}
