package main

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// ceilingQueue is where the ceiling's River job rows go: a queue no worker
// fetches, so that they cost their insertion and nothing else.
const ceilingQueue = "bench_ceiling"

// sqlCeiling runs the SQL of one passer_en_instruction — the statements
// workflow.Service.TransitionTx sends for it, one round trip each, minus
// the reads the API adds (instructeur check, dossier read back) — with
// workers goroutines on distinct dossiers, for d. It is the most the
// database can commit of them on this machine: the ceiling of the API.
//
// The River job row is inserted as River does, and so is pg_notify: River
// sends at most one insert notification per queue per FetchCooldown
// (notifyEvery); notifyEvery 0 notifies in every transaction.
func sqlCeiling(ctx context.Context, s *stack, ds []dossier, workers int, d, notifyEvery time.Duration) loadResult {
	var mu sync.Mutex
	var lastNotify time.Time
	shouldNotify := func() bool {
		if notifyEvery == 0 {
			return true
		}
		mu.Lock()
		defer mu.Unlock()
		if now := time.Now(); now.Sub(lastNotify) >= notifyEvery {
			lastNotify = now
			return true
		}
		return false
	}
	return closedLoop(ctx, workers, len(ds), d, func(ctx context.Context, i int) error {
		id := ds[i].ID
		return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			var (
				procedureID int64
				state       string
				usager      string
				demandeur   []byte
			)
			if err := tx.QueryRow(ctx, `
				SELECT procedure_id, state, usager_email, demandeur FROM dossiers WHERE id = $1 FOR UPDATE`, id,
			).Scan(&procedureID, &state, &usager, &demandeur); err != nil {
				return err
			}
			now := time.Now()
			var motivation *string
			if _, err := tx.Exec(ctx, `
				UPDATE dossiers SET state = $2, updated_at = $3, stale_since = NULL,
					motivation = CASE WHEN $4 THEN $5 ELSE motivation END,
					decided_at = CASE WHEN $4 THEN $3 ELSE decided_at END
				WHERE id = $1`, id, "en_instruction", now, false, motivation); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `
				INSERT INTO dossier_history (dossier_id, event, from_state, to_state, instructeur_email, motivation, at)
				VALUES ($1, $2, $3, $4, $5, $6, $7)`, id, "passer_en_instruction", state, "en_instruction", s.instructeur, motivation, now); err != nil {
				return err
			}
			var deliveryID int64
			if err := tx.QueryRow(ctx, `
				INSERT INTO email_deliveries (dossier_id, kind, recipient, params, created_at)
				VALUES ($1, $2, $3, $4, $5) RETURNING id`, id, "en_instruction", usager, []byte("{}"), now).Scan(&deliveryID); err != nil {
				return err
			}
			args, err := json.Marshal(map[string]int64{"delivery_id": deliveryID})
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `
				INSERT INTO river_job (args, kind, max_attempts, queue, state, priority, metadata, tags, scheduled_at)
				VALUES ($1, 'send_email', 20, $2, 'available', 1, '{}', '{}', now())`, args, ceilingQueue); err != nil {
				return err
			}
			if shouldNotify() {
				if _, err := tx.Exec(ctx, `SELECT pg_notify(current_schema() || '.river_insert', $1)`,
					`{"queue": "`+ceilingQueue+`"}`); err != nil {
					return err
				}
			}
			return nil
		})
	})
}
