package apptest_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aptflow/aptflow/internal/apptest"
	"github.com/aptflow/aptflow/internal/openapitest"
)

// TestResponsesCheckedAgainstOpenAPI: the stack's client checks every
// response of the API against api/openapi.yaml, so that a handler that
// drifts from the document fails the test that calls it. Here the API's
// dossier loses a field on its way out.
func TestResponsesCheckedAgainstOpenAPI(t *testing.T) {
	t.Parallel()
	rec := &openapitest.Recorder{TB: t}
	s := apptest.Start(rec, apptest.Options{NoWorkers: true, WrapHandler: func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != "GET" || !strings.HasPrefix(r.URL.Path, "/v1/dossiers/") {
				h.ServeHTTP(w, r)
				return
			}
			rw := httptest.NewRecorder()
			h.ServeHTTP(rw, r)
			for k, v := range rw.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rw.Code)
			w.Write(bytes.Replace(rw.Body.Bytes(), []byte(`"followers":`), []byte(`"suiveurs":`), 1))
		})
	}})
	id, _ := s.Dossier(s.Procedure())
	if errs := rec.Errors(); len(errs) > 0 {
		t.Fatalf("responses that match the document failed: %q", errs)
	}

	req, _ := http.NewRequest("GET", fmt.Sprintf("%s/v1/dossiers/%d", s.Server.URL, id), nil)
	req.Header.Set("Authorization", "Bearer "+s.Token)
	resp, err := s.Client.Do(req)
	if err == nil {
		resp.Body.Close()
	}
	errs := rec.Errors()
	if err == nil || len(errs) != 1 || !strings.Contains(errs[0], "the response 200 of GET /v1/dossiers/{id} (getDossier) breaks api/openapi.yaml") ||
		!strings.Contains(errs[0], `property "followers" is missing`) {
		t.Fatalf("a dossier without followers passed: err %v, failures %q", err, errs)
	}
}
