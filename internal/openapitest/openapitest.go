// Package openapitest holds the API tests to api/openapi.yaml: a
// RoundTripper that checks every response the tests receive from aptflow
// (its status, content type and body) against the operation the request
// names in the document, so that the description cannot drift from the code.
//
// Wrap a test's HTTP client with Transport and tell it which servers are
// aptflow (Watch); responses from other servers (mailpit, a webhook
// receiver) pass unchecked. A mismatch fails the test that watched the
// server, naming the operation and the response that the document does not
// describe:
//
//	tr := &openapitest.Transport{}
//	tr.Watch(t, srv.URL)
//	client := &http.Client{Transport: tr}
//
// A route that a branch adds to routes.go must be described in openapi.yaml
// before any test calls it.
package openapitest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/aptflow/aptflow/api"
)

// Document is api/openapi.yaml, loaded and validated once: an invalid
// document fails every test that checks against it.
var Document = sync.OnceValues(func() (*Checker, error) { return NewChecker(api.OpenAPI) })

// Checker checks responses against one OpenAPI document.
type Checker struct {
	doc    *openapi3.T
	router routers.Router
}

// NewChecker loads and validates an OpenAPI 3 document (its examples and
// defaults too).
func NewChecker(spec []byte) (*Checker, error) {
	registerDecoders()
	doc, err := openapi3.NewLoader().LoadFromData(spec)
	if err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	if err := doc.Validate(context.Background(), openapi3.EnableExamplesValidation(), openapi3.EnableSchemaDefaultsValidation()); err != nil {
		return nil, fmt.Errorf("openapi.yaml is not valid OpenAPI 3: %w", err)
	}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	return &Checker{doc: doc, router: router}, nil
}

// registerDecoders lets kin-openapi read the bodies it has no decoder for
// as the strings their schemas say they are.
var registerDecoders = sync.OnceFunc(func() {
	for _, ct := range []string{"text/html", "application/pdf"} {
		openapi3filter.RegisterBodyDecoder(ct, openapi3filter.FileBodyDecoder)
	}
})

// Check checks a response to req, with its body, against the document. The
// error names the request's operation and what the document does not
// describe. A request that no operation describes (a wrong path or method,
// which the API tests send on purpose) must get a redirect or a 4xx, and a
// problem+json body then must be a Problem.
func (c *Checker) Check(req *http.Request, status int, header http.Header, body []byte) error {
	// Go serves HEAD on GET routes, without a body.
	routed := req
	if req.Method == http.MethodHead {
		routed = req.Clone(req.Context())
		routed.Method = http.MethodGet
	}
	// The document describes paths, not where the server runs.
	routed = routed.Clone(req.Context())
	routed.URL = &url.URL{Path: req.URL.Path, RawPath: req.URL.RawPath, RawQuery: req.URL.RawQuery}
	route, params, err := c.router.FindRoute(routed)
	if err != nil {
		if sub := c.subtree(routed); sub != nil {
			return c.checkSubtree(req, sub, status)
		}
		return c.checkUnrouted(req, status, header, body, err)
	}
	op := req.Method + " " + route.Path
	if route.Operation.OperationID != "" {
		op += " (" + route.Operation.OperationID + ")"
	}
	if route.Operation.Responses.Status(status) == nil && route.Operation.Responses.Default() == nil {
		return fmt.Errorf("api/openapi.yaml does not describe the response %d of %s: add it (got %s %s)",
			status, op, header.Get("Content-Type"), excerpt(body))
	}
	if req.Method == http.MethodHead {
		return nil
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: routed, PathParams: params, Route: route},
		Status:                 status,
		Header:                 header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(req.Context(), in); err != nil {
		return fmt.Errorf("the response %d of %s breaks api/openapi.yaml: %w\nbody: %s", status, op, err, excerpt(body))
	}
	return nil
}

// subtree is the operation of the longest documented path that ends with a
// slash and starts req's path, as http.ServeMux routes a subtree ("/riverui/"
// serves River UI's pages and API), or nil.
func (c *Checker) subtree(req *http.Request) *routers.Route {
	var best *routers.Route
	for path, item := range c.doc.Paths.Map() {
		if !strings.HasSuffix(path, "/") || !strings.HasPrefix(req.URL.Path, path) {
			continue
		}
		if op := item.GetOperation(req.Method); op != nil && (best == nil || len(path) > len(best.Path)) {
			best = &routers.Route{Spec: c.doc, Path: path, PathItem: item, Method: req.Method, Operation: op}
		}
	}
	return best
}

// checkSubtree checks the status of a response below a documented subtree:
// its pages belong to the handler mounted there (River UI, pprof), which
// the document describes as a whole, not page by page.
func (c *Checker) checkSubtree(req *http.Request, route *routers.Route, status int) error {
	if route.Operation.Responses.Status(status) == nil && route.Operation.Responses.Default() == nil {
		return fmt.Errorf("api/openapi.yaml does not describe the response %d of %s %s (%s), below %s",
			status, req.Method, req.URL.Path, route.Operation.OperationID, route.Path)
	}
	return nil
}

// checkUnrouted checks the response to a request that no operation
// describes.
func (c *Checker) checkUnrouted(req *http.Request, status int, header http.Header, body []byte, routeErr error) error {
	what := req.Method + " " + req.URL.Path
	if status < 300 || status >= 500 {
		return fmt.Errorf("api/openapi.yaml describes no operation %s (%v), which answered %d: describe it", what, routeErr, status)
	}
	mt, _, _ := mime.ParseMediaType(header.Get("Content-Type"))
	if status < 400 || req.Method == http.MethodHead {
		return nil
	}
	if mt != "application/problem+json" {
		return fmt.Errorf("%s answered %d as %q: a 4xx is application/problem+json\nbody: %s", what, status, header.Get("Content-Type"), excerpt(body))
	}
	problem := c.doc.Components.Schemas["Problem"]
	if problem == nil || problem.Value == nil {
		return errors.New("api/openapi.yaml has no components.schemas.Problem")
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("%s answered %d with a problem+json body that is not JSON: %v", what, status, err)
	}
	if err := problem.Value.VisitJSON(v, openapi3.MultiErrors()); err != nil {
		return fmt.Errorf("%s answered %d with a problem that breaks the Problem schema of api/openapi.yaml: %w\nbody: %s", what, status, err, excerpt(body))
	}
	return nil
}

// excerpt is the start of a body, for an error message.
func excerpt(body []byte) string {
	const max = 500
	s := strings.ToValidUTF8(string(body), "\uFFFD")
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}

// Transport is an http.RoundTripper that checks, against api/openapi.yaml,
// every response of the servers it watches; a mismatch fails the test that
// watches the server (t.Errorf: a request may run on another goroutine
// than the test's) and the request returns an error too.
type Transport struct {
	// Next sends the requests; nil is http.DefaultTransport as it was
	// when the Transport first sent one. A Transport that replaces
	// http.DefaultTransport must set it to the one it replaces.
	Next http.RoundTripper

	mu      sync.Mutex
	next    http.RoundTripper
	watched map[string]testing.TB // host:port → the test to fail
}

// Watch checks the responses of the server at baseURL (scheme://host:port)
// for t, until t ends.
func (tr *Transport) Watch(t testing.TB, baseURL string) {
	t.Helper()
	u, err := url.Parse(baseURL)
	if err != nil || u.Host == "" {
		t.Fatalf("openapitest: watch %q: a base URL is expected", baseURL)
	}
	if _, err := Document(); err != nil {
		t.Fatal(err)
	}
	tr.mu.Lock()
	if tr.watched == nil {
		tr.watched = map[string]testing.TB{}
	}
	tr.watched[u.Host] = t
	tr.mu.Unlock()
	t.Cleanup(func() {
		tr.mu.Lock()
		if tr.watched[u.Host] == t {
			delete(tr.watched, u.Host)
		}
		tr.mu.Unlock()
	})
}

// RoundTrip sends req and checks the response if its server is watched.
func (tr *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	tr.mu.Lock()
	if tr.next == nil {
		tr.next = tr.Next
		if tr.next == nil {
			tr.next = http.DefaultTransport
		}
		if tr.next == http.RoundTripper(tr) {
			tr.mu.Unlock()
			return nil, errors.New("openapitest: a Transport that is http.DefaultTransport needs Next")
		}
	}
	next, t := tr.next, tr.watched[req.URL.Host]
	tr.mu.Unlock()
	resp, err := next.RoundTrip(req)
	if err != nil || t == nil {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	c, err := Document()
	if err == nil {
		err = c.Check(req, resp.StatusCode, resp.Header, body)
	}
	if err != nil {
		t.Errorf("openapitest: %v", err)
		return nil, fmt.Errorf("openapitest: %w", err)
	}
	return resp, nil
}

// Client returns an HTTP client whose responses from baseURL are checked
// for t.
func Client(t testing.TB, baseURL string) *http.Client {
	t.Helper()
	tr := &Transport{}
	tr.Watch(t, baseURL)
	return &http.Client{Transport: tr}
}

// Recorder is a test that records its errors instead of failing, for the
// tests that prove a check fails.
type Recorder struct {
	testing.TB
	mu     sync.Mutex
	errors []string
}

// Errorf records the error.
func (r *Recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

// Errors returns the errors recorded so far.
func (r *Recorder) Errors() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.errors...)
}
