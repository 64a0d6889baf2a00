// Package sqlcheck holds a test, not code: it reads every Go file of
// aptflow and checks that SQL reaches the database only as constant text
// with $n parameters, never built from values (no fmt.Sprintf, no
// concatenated input). See sqlcheck_test.go.
package sqlcheck
