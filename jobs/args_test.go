package jobs_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/aptflow/aptflow/jobs"
)

// allArgs is every job's args, which TestArgsCarryIDsOnly checks; the test
// fails for an XArgs type of the package missing here.
var allArgs = []river.JobArgs{
	jobs.SendEmailArgs{}, jobs.RenderAttestationArgs{}, jobs.NotifyFollowerArgs{},
	jobs.SendDigestsArgs{}, jobs.ScanStaleArgs{}, jobs.PurgeArgs{}, jobs.DeliverWebhookArgs{},
}

// TestArgsCarryIDsOnly: River keeps a job's args in river_job, completed
// jobs for 24 hours, failed ones until someone looks, beyond the purge's
// reach: they must hold ids and times, never personal data. Every field of
// every args type is an int64 (an id), a list of them, or a time (a cron
// run time); docs/DATA.md says so.
func TestArgsCarryIDsOnly(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var declared []string
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if ts, ok := n.(*ast.TypeSpec); ok && strings.HasSuffix(ts.Name.Name, "Args") && ts.Name.IsExported() {
				declared = append(declared, ts.Name.Name)
			}
			return true
		})
	}
	var listed []string
	allowed := []reflect.Type{reflect.TypeFor[int64](), reflect.TypeFor[[]int64](), reflect.TypeFor[time.Time]()}
	for _, a := range allArgs {
		typ := reflect.TypeOf(a)
		listed = append(listed, typ.Name())
		for i := range typ.NumField() {
			if f := typ.Field(i); !slices.Contains(allowed, f.Type) {
				t.Errorf("%s.%s is a %s: args carry ids (int64) and times only", typ.Name(), f.Name, f.Type)
			}
		}
	}
	slices.Sort(declared)
	slices.Sort(listed)
	if !slices.Equal(declared, listed) {
		t.Errorf("args types declared %v, checked %v: list every one in allArgs", declared, listed)
	}
}
