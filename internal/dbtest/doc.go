// Package dbtest gives each test its own real, migrated PostgreSQL database.
//
// New returns a pool on a fresh database and URL its connection string (for a
// test that starts the aptflow binary). Both drop the database when the test
// ends. Create makes one for code outside a test (a TestMain for examples),
// which drops it itself.
//
// Creating and migrating a database for every test would be slow, so the first
// call in a test process builds a template database once, named after a hash
// of the migrations (aptflow's SQL and Go files and River's migrations), and
// every later call clones it with CREATE DATABASE ... TEMPLATE, which takes a
// few milliseconds. A PostgreSQL advisory lock lets several test binaries
// (go test runs one per package, in parallel) share the work: one builds the
// template, the others wait and reuse it. A schema change gives a new hash and
// so a new template; old templates are left alone, as another checkout may
// still use them.
//
// The server comes from TEST_DATABASE_URL, a URL or key=value connection
// string of a role that may create databases, by default
// postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable. `make test`
// finds or starts one (scripts/ensure-postgres.sh) and sets it. A test never
// skips for want of a database: it fails, saying how to get one.
//
// Databases are named aptflow_test_<unix time>_<pid>_<n>_<random>. A process
// killed before its cleanups ran (a -timeout panic) leaves its databases
// behind; the first call of a later process drops those older than an hour.
// Set TEST_DATABASE_KEEP=1 to keep the database of a failed test, for a look
// with psql: its URL is logged.
package dbtest
