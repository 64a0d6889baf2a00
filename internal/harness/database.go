package harness

import (
	"context"
	"fmt"
	"net/url"
	"slices"

	"github.com/jackc/pgx/v5"
)

// CreateDatabase creates the database name, afresh (dropped first if it
// exists), on the PostgreSQL server of adminURL, and returns its connection
// string.
func CreateDatabase(ctx context.Context, adminURL, name string) (string, error) {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return "", fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.Close(ctx)
	ident := pgx.Identifier{name}.Sanitize()
	if _, err := conn.Exec(ctx, `DROP DATABASE IF EXISTS `+ident+` WITH (FORCE)`); err != nil {
		return "", fmt.Errorf("drop %s: %w", name, err)
	}
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+ident+` TEMPLATE template0 ENCODING 'UTF8'`); err != nil {
		return "", fmt.Errorf("create %s: %w", name, err)
	}
	return WithDatabase(adminURL, name), nil
}

// DropDatabase drops the database name, cutting its connections.
func DropDatabase(ctx context.Context, adminURL, name string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `DROP DATABASE IF EXISTS `+pgx.Identifier{name}.Sanitize()+` WITH (FORCE)`)
	return err
}

// WithDatabase returns connString, a URL or a key=value connection string,
// pointing at the database name instead.
func WithDatabase(connString, name string) string {
	if u, err := url.Parse(connString); err == nil && slices.Contains([]string{"postgres", "postgresql"}, u.Scheme) {
		u.Path = "/" + name
		u.RawPath = ""
		return u.String()
	}
	// A key=value string: the last dbname wins.
	return connString + " dbname=" + name
}
