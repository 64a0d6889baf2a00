package workflow

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// The tabs are keyed so that a page costs the rows it returns, whatever the
// size of the other procedures, or of the instructeur's own history: each
// is a range of an index holding exactly its rows, in id order, which the
// query leaves at the page's end. Keyed on the instructeur alone, the
// planner walked dossiers_pkey and threw away every other procedure's rows
// (issue 19: 91,000 buffers for a page of 20 with a million dossiers
// elsewhere). The indexes and the columns that make them exact are in
// migrations/00009_scale.sql; TestTabPlans guards the plans.

// procedureTabs are the tabs that list the dossiers of the instructeur's
// procedures that match a condition: each its own, which is the predicate
// of the partial index it walks (a_suivre: dossiers_a_suivre_idx, traites:
// dossiers_traites_idx) or nothing (tous: dossiers_procedure_idx). The
// planner uses a partial index only for a condition that implies its
// predicate: keep them identical.
var procedureTabs = map[string]string{
	TabASuivre: `AND d.state IN ('en_construction', 'en_instruction') AND d.followers = 0`,
	TabTraites: `AND d.state IN ('accepte', 'refuse', 'sans_suite')`,
	TabTous:    ``,
}

// tabQuery returns the query of one page of the tab f.Tab (a valid one) of
// the instructeur instID, and its arguments.
//
// A procedure tab walks, for each procedure of the instructeur (a LATERAL
// subquery), the first f.Limit ids of its range, from the index alone; the
// page is the first f.Limit of those, whose rows it then reads. An
// instructeur of p procedures reads at most p·limit index entries and
// limit rows.
//
// suivis walks the instructeur's open follows (follows_suivis_idx) in
// dossier order; each dossier is checked again (open, and of a procedure
// the instructeur still instructs) before the limit, so that a page is
// full whenever more dossiers follow.
func tabQuery(instID int64, f ListFilter) (string, []any) {
	args := []any{instID, f.AfterID, f.Limit}
	if f.Tab == TabSuivis {
		return `
			SELECT ` + dossierColumns + `
			FROM follows f JOIN dossiers d ON d.id = f.dossier_id
			WHERE f.instructeur_id = $1 AND f.dossier_ouvert AND f.dossier_id > $2
				AND d.state IN ('en_construction', 'en_instruction')
				AND EXISTS (SELECT 1 FROM procedure_instructeurs pi
				            WHERE pi.instructeur_id = $1 AND pi.procedure_id = d.procedure_id)
			ORDER BY f.dossier_id LIMIT $3`, args
	}
	return `
		WITH page AS (
			SELECT p.id
			FROM procedure_instructeurs pi
			CROSS JOIN LATERAL (
				SELECT d.id FROM dossiers d
				WHERE (d.procedure_id, d.id) > (pi.procedure_id, $2) AND d.procedure_id <= pi.procedure_id
					` + procedureTabs[f.Tab] + `
				ORDER BY d.procedure_id, d.id LIMIT $3
			) p
			WHERE pi.instructeur_id = $1
			ORDER BY p.id LIMIT $3
		)
		SELECT ` + dossierColumns + `
		FROM page JOIN dossiers d ON d.id = page.id
		ORDER BY d.id`, args
}

// listTab reads one page of a tab.
func listTab(ctx context.Context, q querier, instID int64, f ListFilter) ([]DossierSummary, error) {
	sql, args := tabQuery(instID, f)
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
