package workflow

import (
	"context"
	"slices"
)

// accessKey carries the procedures a caller may see (see OnlyProcedures).
type accessKey struct{}

// OnlyProcedures returns a context under which the Service sees only the
// procedures ids, and the dossiers and instructeurs of those procedures:
// anything else is ENotFound, as if it did not exist, and lists leave it
// out. The API puts there the procedures of a token limited to some. A
// context without it sees everything (the workers, the commands, an
// upstream Go app).
func OnlyProcedures(ctx context.Context, ids []int64) context.Context {
	return context.WithValue(ctx, accessKey{}, slices.Clone(ids))
}

// visibleProcedures returns the procedures ctx may see, and false when it
// may see them all. Its result is a query parameter: NULL (nil) for all.
func visibleProcedures(ctx context.Context) ([]int64, bool) {
	ids, ok := ctx.Value(accessKey{}).([]int64)
	return ids, ok
}

// visible reports whether ctx may see the procedure id. Each place that
// reads a dossier, a procedure or an instructeur by what the caller named
// checks it on the row it read, in the same round trip: the check costs no
// query of its own.
func visible(ctx context.Context, procedureID int64) bool {
	ids, limited := visibleProcedures(ctx)
	return !limited || slices.Contains(ids, procedureID)
}
