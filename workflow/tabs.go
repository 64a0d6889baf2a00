package workflow

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// The tabs are keyed so that a page costs the rows it returns, whatever the
// size of the other procedures, or of the instructeur's own history: each
// is, per procedure, a range of an index holding exactly its rows, in id
// order, which the query leaves at the page's end. Keyed on the instructeur
// alone, the planner walked dossiers_pkey and threw away every other
// procedure's rows (issue 19: 91,000 buffers for a page of 20 with a
// million dossiers elsewhere). The indexes, and the columns that make them
// exact, are in migrations/00009_scale.sql; TestTabPlans guards the plans.

// tabRanges are, for each tab, the range its query walks for one procedure
// pi of the instructeur: the ids of its first $3 dossiers after $2, in the
// tab's order (k), from an index that holds exactly the tab's rows, in that
// order: a_suivre from dossiers_a_suivre_idx, traites from
// dossiers_traites_idx, tous from dossiers_live_idx, suivis from
// follows_suivis_idx, expirant from dossiers_expirant_idx. Their conditions
// are the indexes' predicates (the planner uses a partial index only for a
// condition that implies its predicate: keep them identical). A purged
// dossier (a tombstone) is in no tab, and has no follows.
//
// The id ranges are a row comparison, (procedure_id, id) >
// (pi.procedure_id, $2) up to pi.procedure_id, rather than procedure_id =
// pi.procedure_id AND id > $2: with the equality, the planner may walk
// dossiers_pkey in id order instead, the order asked for, filtering on the
// procedure, which it estimates from the number of procedures and not from
// their sizes (TestTabPlans saw it read 10,000 buffers for a page of 6).
//
// expirant (expiring by $5) is in the order of expiry, the soonest first,
// then of id: in id order, its range would hold every live dossier of the
// procedure, of which few expire soon. Its keyset is the expiry of the
// dossier $2 (the last of the previous page) and $2. Its range keeps the
// equality on the procedure: no index but dossiers_expirant_idx gives its
// order, and the equality lets the scan stop at the first expiry after $5.
var tabRanges = map[string]string{
	TabASuivre: dossierRange(`AND d.state IN ('en_construction', 'en_instruction') AND d.followers = 0 AND d.deleted_at IS NULL`),
	TabTraites: dossierRange(`AND d.state IN ('accepte', 'refuse', 'sans_suite') AND d.deleted_at IS NULL`),
	TabTous:    dossierRange(`AND d.deleted_at IS NULL`),
	TabSuivis: `
		SELECT f.dossier_id AS id, f.dossier_id AS k FROM follows f
		WHERE f.instructeur_id = pi.instructeur_id AND f.dossier_ouvert
			AND (f.procedure_id, f.dossier_id) > (pi.procedure_id, $2) AND f.procedure_id <= pi.procedure_id
		ORDER BY f.procedure_id, f.dossier_id LIMIT $3`,
	TabExpirant: `
		SELECT d.id, d.expires_at AS k FROM dossiers d
		WHERE d.procedure_id = pi.procedure_id AND d.deleted_at IS NULL AND d.expires_at IS NOT NULL
			AND d.expires_at <= $5
			AND (d.expires_at, d.id) > (coalesce((SELECT expires_at FROM dossiers WHERE id = $2), '-infinity'), $2)
		ORDER BY d.expires_at, d.id LIMIT $3`,
}

func dossierRange(cond string) string {
	return `
		SELECT d.id, d.id AS k FROM dossiers d
		WHERE (d.procedure_id, d.id) > (pi.procedure_id, $2) AND d.procedure_id <= pi.procedure_id
			` + cond + `
		ORDER BY d.procedure_id, d.id LIMIT $3`
}

// tabQuery returns the query of one page of the tab f.Tab (a valid one) of
// the instructeur instID, within the procedures procs (nil: all of theirs),
// and its arguments: for each procedure of the instructeur (a LATERAL
// subquery), the first f.Limit ids of its range, from the index alone; then
// the first f.Limit of those, whose rows it reads. An instructeur of p
// procedures reads at most p·limit index entries and limit rows, whatever
// the size of the procedures. expiringBy bounds expirant.
func tabQuery(instID int64, f ListFilter, procs []int64, expiringBy time.Time) (string, []any) {
	args := []any{instID, f.AfterID, f.Limit, procs}
	order := "d.id"
	if f.Tab == TabExpirant {
		args = append(args, expiringBy)
		order = "d.expires_at, d.id"
	}
	return `
		WITH page AS (
			SELECT p.id, p.k
			FROM procedure_instructeurs pi
			CROSS JOIN LATERAL (` + tabRanges[f.Tab] + `) p
			WHERE pi.instructeur_id = $1 AND ($4::bigint[] IS NULL OR pi.procedure_id = ANY($4))
			ORDER BY p.k, p.id LIMIT $3
		)
		SELECT ` + dossierColumns + `
		FROM page JOIN dossiers d ON d.id = page.id
		ORDER BY ` + order, args
}

// listTab reads one page of a tab.
func listTab(ctx context.Context, q querier, instID int64, f ListFilter, procs []int64, expiringBy time.Time) ([]DossierSummary, error) {
	sql, args := tabQuery(instID, f, procs, expiringBy)
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("list dossiers: %w", err)
	}
	list, err := pgx.CollectRows(rows, scanDossier)
	if err != nil {
		return nil, fmt.Errorf("list dossiers: %w", err)
	}
	return list, nil
}
