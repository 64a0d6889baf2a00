package dbtest

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// Querier is what a pool, a connection and a transaction share.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// FollowDrift returns, one line each, the dossiers whose followers column is
// not their number of follows and the follows whose dossier_ouvert is not
// their dossier's state or whose procedure_id is not its procedure: what
// migration 00009's triggers keep, and its backfill writes, so that the
// tabs' partial indexes hold exactly their rows. It must return nothing.
func FollowDrift(ctx context.Context, q Querier) ([]string, error) {
	rows, _ := q.Query(ctx, `
		SELECT format('dossier %s (%s): followers %s, %s follows', d.id, d.state, d.followers, count(f.*))
		FROM dossiers d LEFT JOIN follows f ON f.dossier_id = d.id
		GROUP BY d.id HAVING d.followers <> count(f.*)
		UNION ALL
		SELECT format('follow of dossier %s (%s, procedure %s) by %s: dossier_ouvert %s, procedure_id %s',
			d.id, d.state, d.procedure_id, f.instructeur_id, f.dossier_ouvert, f.procedure_id)
		FROM follows f JOIN dossiers d ON d.id = f.dossier_id
		WHERE f.dossier_ouvert <> (d.state IN ('en_construction', 'en_instruction'))
			OR f.procedure_id IS DISTINCT FROM d.procedure_id`)
	return pgx.CollectRows(rows, pgx.RowTo[string])
}
