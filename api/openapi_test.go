package api

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// spec is the part of openapi.yaml the tests read.
type spec struct {
	OpenAPI    string                               `yaml:"openapi"`
	Paths      map[string]map[string]map[string]any `yaml:"paths"`
	Components map[string]map[string]any            `yaml:"components"`
}

func loadSpec(t *testing.T) (spec, any) {
	t.Helper()
	var s spec
	if err := yaml.Unmarshal(OpenAPI, &s); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	var tree any
	if err := yaml.Unmarshal(OpenAPI, &tree); err != nil {
		t.Fatal(err)
	}
	return s, tree
}

// patterns records what addRoutes registers.
type patterns []string

func (p *patterns) Handle(pattern string, _ http.Handler) { *p = append(*p, pattern) }

// notRoutes are registered patterns that are no route of the API: the
// catch-all that answers unknown /v1/ paths with a problem+json 404.
var notRoutes = []string{"/v1/"}

// documented turns a registered pattern into the "METHOD /path" of
// openapi.yaml: a subtree for any method (River UI's) is documented as the
// page at its root.
func documented(pattern string) string {
	if strings.HasPrefix(pattern, "/") {
		return "GET " + pattern
	}
	return pattern
}

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// TestOpenAPICoversRoutes: every route of routes.go is documented, every
// documented operation reaches the route it documents, and the document
// holds together (references resolve, path parameters are declared).
func TestOpenAPICoversRoutes(t *testing.T) {
	t.Parallel()
	s, tree := loadSpec(t)
	if !strings.HasPrefix(s.OpenAPI, "3.") {
		t.Fatalf("openapi: %q, want 3.x", s.OpenAPI)
	}
	deps := Deps{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	// Every optional handler set (metrics, River UI...), so that each route
	// they add, today's or a future one's, must be documented too.
	dv := reflect.ValueOf(&deps).Elem()
	for i := range dv.NumField() {
		if dv.Field(i).Type() == reflect.TypeFor[http.Handler]() {
			dv.Field(i).Set(reflect.ValueOf(http.NotFoundHandler()))
		}
	}
	var registered patterns
	addRoutes(&registered, deps)
	mux := http.NewServeMux()
	addRoutes(mux, deps)

	ops := map[string]bool{} // "METHOD /path" of openapi.yaml
	for path, item := range s.Paths {
		for method := range item {
			if slices.Contains(httpMethods, method) {
				ops[strings.ToUpper(method)+" "+path] = true
			}
		}
	}
	routes := map[string]string{} // documented form → registered pattern
	for _, p := range registered {
		if !slices.Contains(notRoutes, p) {
			routes[documented(p)] = p
		}
	}

	t.Run("EveryRouteDocumented", func(t *testing.T) {
		for op := range routes {
			if !ops[op] {
				t.Errorf("route %q is not in openapi.yaml", op)
			}
		}
	})
	t.Run("EveryOperationRouted", func(t *testing.T) {
		param := regexp.MustCompile(`\{[^}]+\}`)
		for op := range ops {
			method, path, _ := strings.Cut(op, " ")
			pattern, ok := routes[op]
			if p, sub := routes["GET "+path]; !ok && sub && p == path {
				pattern, ok = p, true // a subtree without a method takes them all
			}
			if !ok {
				t.Errorf("openapi.yaml documents %q, which routes.go does not register", op)
				continue
			}
			// A request like a client's must reach that very route, not
			// another that shadows it.
			r := httptest.NewRequest(method, param.ReplaceAllString(path, "1"), nil)
			if _, got := mux.Handler(r); got != pattern {
				t.Errorf("%s %s reaches %q, want %q", method, r.URL.Path, got, pattern)
			}
		}
	})
	t.Run("PathParametersDeclared", func(t *testing.T) {
		param := regexp.MustCompile(`\{([^}]+)\}`)
		for path, item := range s.Paths {
			for method, op := range item {
				declared := map[string]bool{}
				params, _ := op["parameters"].([]any)
				for _, p := range params {
					m := resolve(t, tree, p)
					if m["in"] == "path" {
						declared[m["name"].(string)] = true
					}
				}
				for _, want := range param.FindAllStringSubmatch(path, -1) {
					if !declared[want[1]] {
						t.Errorf("%s %s: path parameter %q not declared", method, path, want[1])
					}
				}
			}
		}
	})
	t.Run("ReferencesResolve", func(t *testing.T) {
		walk(tree, func(ref string) {
			if lookup(tree, ref) == nil {
				t.Errorf("$ref %q does not resolve", ref)
			}
		})
	})
	t.Run("Served", func(t *testing.T) {
		w := httptest.NewRecorder()
		NewServer(deps).ServeHTTP(w, httptest.NewRequest("GET", "/openapi.yaml", nil))
		if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/yaml") || w.Body.String() != string(OpenAPI) {
			t.Fatalf("GET /openapi.yaml without credentials: %d %s", w.Code, w.Header().Get("Content-Type"))
		}
	})
}

// resolve follows v's $ref, if any, and returns the object.
func resolve(t *testing.T, tree, v any) map[string]any {
	t.Helper()
	m, _ := v.(map[string]any)
	if ref, ok := m["$ref"].(string); ok {
		m, _ = lookup(tree, ref).(map[string]any)
	}
	if m == nil {
		t.Fatalf("cannot resolve %v", v)
	}
	return m
}

// lookup returns the node of a local reference "#/a/b/c", or nil.
func lookup(tree any, ref string) any {
	rest, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil
	}
	node := tree
	for _, key := range strings.Split(rest, "/") {
		m, ok := node.(map[string]any)
		if !ok {
			return nil
		}
		key = strings.ReplaceAll(strings.ReplaceAll(key, "~1", "/"), "~0", "~")
		if node, ok = m[key]; !ok {
			return nil
		}
	}
	return node
}

// walk calls fn with every $ref of the tree.
func walk(node any, fn func(ref string)) {
	switch n := node.(type) {
	case map[string]any:
		for k, v := range n {
			if s, ok := v.(string); ok && k == "$ref" {
				fn(s)
			} else {
				walk(v, fn)
			}
		}
	case []any:
		for _, v := range n {
			walk(v, fn)
		}
	}
}

// TestProblemCodesDocumented: the problem codes openapi.yaml lists are
// exactly those the API answers with (statuses), and every operation that
// takes an Idempotency-Key documents the 400 codes of a key it refuses.
func TestProblemCodesDocumented(t *testing.T) {
	t.Parallel()
	s, tree := loadSpec(t)
	problem, _ := lookup(tree, "#/components/schemas/Problem/properties/code").(map[string]any)
	enum, _ := problem["enum"].([]any)
	documented := map[string]bool{}
	for _, c := range enum {
		documented[c.(string)] = true
	}
	for code := range statuses {
		if !documented[code] {
			t.Errorf("code %q is not in the Problem schema of openapi.yaml", code)
		}
	}
	for code := range documented {
		if _, ok := statuses[code]; !ok {
			t.Errorf("openapi.yaml documents code %q, which the API never answers", code)
		}
	}
	for path, item := range s.Paths {
		for method, op := range item {
			params, _ := op["parameters"].([]any)
			keyed := slices.ContainsFunc(params, func(p any) bool { return resolve(t, tree, p)["name"] == "Idempotency-Key" })
			if !keyed {
				continue
			}
			responses, _ := op["responses"].(map[string]any)
			bad, ok := responses["400"]
			if !ok {
				t.Errorf("%s %s takes an Idempotency-Key and documents no 400", method, path)
				continue
			}
			desc, _ := resolve(t, tree, bad)["description"].(string)
			for _, code := range []string{codeIdempotencyKeyTooLong, codeInvalidIdempotencyKey} {
				if !strings.Contains(desc, code) {
					t.Errorf("%s %s: its 400 does not say %s", method, path, code)
				}
			}
		}
	}
}
