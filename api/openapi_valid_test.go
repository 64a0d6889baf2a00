package api_test

import (
	"testing"

	"github.com/aptflow/aptflow/internal/openapitest"
)

// TestOpenAPIValid lints api/openapi.yaml: kin-openapi loads it and
// validates it as OpenAPI 3, its examples and defaults against their
// schemas too. (An unquoted comma inside a YAML flow mapping once cut a
// description short and made the rest of it a bogus property.)
func TestOpenAPIValid(t *testing.T) {
	t.Parallel()
	if _, err := openapitest.Document(); err != nil {
		t.Fatal(err)
	}
}
