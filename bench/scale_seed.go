package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aptflow/aptflow/workflow"
)

// The shape of the procedures: the big one has bigInstructeurs, each other
// seeded one mediumInstructeurs, named so that the seed's SQL derives who
// instructed a dossier from its id (instructeurEmail).
const (
	mediumProcedures   = 98
	bigInstructeurs    = 30
	mediumInstructeurs = 3
)

// instructeurEmail is the SQL of the e-mail of the instructeur who took the
// dossier d into instruction (and follows it), $2 being the big procedure.
const instructeurEmail = `CASE WHEN d.procedure_id = $2
	THEN 'instructeur-' || (d.id % 30) || '@big.bench.example'
	ELSE 'instructeur-' || (d.id % 3) || '@p' || d.procedure_id || '.bench.example' END`

// setup creates, through the API, the small procedure and the big one, an
// instructeur each and twenty dossiers each in every state (the accepted
// ones with their rendered attestation); and, by SQL, the big procedure's
// other instructeurs and the 98 other procedures with theirs.
func (sc *scale) setup(ctx context.Context) error {
	var err error
	if sc.small, err = sc.apiProcedure(ctx, "petite", "Préfecture de la Lozère", "instructeur@small.bench.example"); err != nil {
		return err
	}
	if sc.big, err = sc.apiProcedure(ctx, "grande", "Préfecture de police de Paris", "instructeur-0@big.bench.example"); err != nil {
		return err
	}
	for _, p := range []procedure{sc.small, sc.big} {
		for i := range 20 {
			id, err := sc.apiDossier(ctx, p, fmt.Sprintf("setup-%d-%d", p.ID, i))
			if err != nil {
				return err
			}
			var events []string
			switch {
			case i >= 18:
				events = []string{"passer_en_instruction", "refuser"}
			case i >= 14:
				events = []string{"passer_en_instruction", "accepter"}
			case i >= 8:
				events = []string{"passer_en_instruction"}
			}
			for _, e := range events {
				if err := sc.event(ctx, p, id, e); err != nil {
					return err
				}
			}
		}
	}
	if _, err := sc.s.pool.Exec(ctx, `
		WITH i AS (
			INSERT INTO instructeurs (email, nom)
			SELECT 'instructeur-' || g || '@big.bench.example', 'Instructeur ' || g FROM generate_series(1, $2 - 1) g
			RETURNING id
		)
		INSERT INTO procedure_instructeurs (procedure_id, instructeur_id) SELECT $1, id FROM i`, sc.big.ID, bigInstructeurs); err != nil {
		return fmt.Errorf("instructeurs: %w", err)
	}
	rows, err := sc.s.pool.Query(ctx, `
		INSERT INTO procedures (libelle, service_nom, service_adresse, stale_after_days, heures_hebdo_max)
		SELECT 'Autorisation provisoire de travail (APT) pour les étudiants', 'Préfecture ' || g, g || ' place de la Préfecture', 30, 20
		FROM generate_series(1, $1) g RETURNING id`, mediumProcedures)
	if err != nil {
		return fmt.Errorf("procedures: %w", err)
	}
	if sc.medium, err = pgx.CollectRows(rows, pgx.RowTo[int64]); err != nil {
		return fmt.Errorf("procedures: %w", err)
	}
	if _, err := sc.s.pool.Exec(ctx, `
		WITH i AS (
			INSERT INTO instructeurs (email, nom)
			SELECT 'instructeur-' || g || '@p' || p || '.bench.example', 'Instructeur ' || g
			FROM unnest($1::bigint[]) p, generate_series(0, $2 - 1) g
			RETURNING id, email
		)
		INSERT INTO procedure_instructeurs (procedure_id, instructeur_id)
		SELECT substring(email FROM '@p([0-9]+)\.')::bigint, id FROM i`, sc.medium, mediumInstructeurs); err != nil {
		return fmt.Errorf("instructeurs: %w", err)
	}
	return sc.waitIdle(ctx, 2*time.Minute)
}

// apiProcedure creates a procedure and its instructeur through the API.
func (sc *scale) apiProcedure(ctx context.Context, name, service, instructeur string) (procedure, error) {
	body, err := sc.call(ctx, http.StatusCreated, http.MethodPost, "/v1/procedures", procedureInput(service), nil)
	if err != nil {
		return procedure{}, err
	}
	p := procedure{Name: name, Instructeur: instructeur}
	if err := json.Unmarshal(body, &p); err != nil {
		return p, err
	}
	path := "/v1/procedures/" + strconv.FormatInt(p.ID, 10)
	if _, err = sc.call(ctx, http.StatusCreated, http.MethodPost, path+"/instructeurs",
		map[string]any{"email": instructeur, "nom": "Camille Instructrice"}, nil); err != nil {
		return p, err
	}
	// Its transitions go to the stack's webhook receiver, as an upstream
	// app would have them.
	body, err = sc.call(ctx, http.StatusCreated, http.MethodPost, path+"/webhooks",
		map[string]any{"url": sc.s.hooks.URL, "events": []string{workflow.WebhookDossierStateChanged}}, nil)
	if err != nil {
		return p, err
	}
	var hook struct {
		ID     int64  `json:"id"`
		Secret string `json:"secret"`
	}
	if err := json.Unmarshal(body, &hook); err != nil {
		return p, err
	}
	p.Webhook = hook.ID
	return p, sc.s.hooks.AddSecret(hook.Secret)
}

// procedureInput is a procedure of the service.
func procedureInput(service string) map[string]any {
	return map[string]any{
		"libelle":          "Autorisation provisoire de travail (APT) pour les étudiants",
		"service":          map[string]any{"nom": service, "adresse": "1 place de la Préfecture\n75000 Paris"},
		"stale_after_days": 30,
		"heures_hebdo_max": 20,
	}
}

// apiDossier creates a dossier of p through the API, for the applicant
// tag@etudiant.bench.example.
func (sc *scale) apiDossier(ctx context.Context, p procedure, tag string) (int64, error) {
	body, err := sc.call(ctx, http.StatusCreated, http.MethodPost, "/v1/dossiers", map[string]any{
		"procedure_id": p.ID, "usager_email": tag + "@etudiant.bench.example", "demandeur": demandeur(),
	}, nil)
	if err != nil {
		return 0, err
	}
	var d struct{ ID int64 }
	err = json.Unmarshal(body, &d)
	return d.ID, err
}

// event posts an event of p's instructeur on a dossier.
func (sc *scale) event(ctx context.Context, p procedure, id int64, event string) error {
	body := map[string]any{"event": event, "instructeur": p.Instructeur}
	if event == "refuser" || event == "classer_sans_suite" {
		body["motivation"] = "Pièces manquantes : le contrat de travail n'est pas signé."
	}
	_, err := sc.call(ctx, http.StatusOK, http.MethodPost, "/v1/dossiers/"+strconv.FormatInt(id, 10)+"/events", body, nil)
	return err
}

// grow seeds dossiers until size are seeded, half in the big procedure,
// half spread over the 98 others, and records how long it took.
func (sc *scale) grow(ctx context.Context, size int, st *scaleStage) error {
	n := size - sc.seeded
	if n <= 0 {
		return nil
	}
	if err := sc.waitIdle(ctx, 10*time.Minute); err != nil {
		return err
	}
	sc.logf("seeding %d dossiers (to %d)", n, size)
	start := time.Now()
	if err := sc.seed(ctx, n, st); err != nil {
		return err
	}
	st.Seeded, st.SeedTime = n, time.Since(start)
	sc.seeded = size
	sc.logf("seeded %d dossiers in %s", n, st.SeedTime.Round(time.Second))
	return nil
}

// seedTables are the tables seed writes, whose indexes it rebuilds.
var seedTables = []string{"dossiers", "dossier_history", "follows", "activities", "email_deliveries", "attestations",
	"webhook_events", "webhook_deliveries"}

// seed inserts n dossiers, created over the last two years in id order
// as time leaves them: the oldest 80 % decided (60 % accepted, 15 %
// refused, 5 % classés sans suite), then 8 % en instruction, then 12 % en
// construction, active in the last 20 days (none stale). Each expires 12
// months after its decision or last activity (the default conservation);
// those expired are purged, as the nightly purge leaves them: a tombstone
// without personal data, history, follows, e-mails nor messages, its
// attestation without its PDF (about the older half). Every live decided
// dossier of the big procedure has its webhook delivered. Every live dossier
// that went into instruction has its history, is followed by the
// instructeur who took it, and has its e-mails in the delivery log;
// accepted ones an attestation (a 300-byte PDF stand-in: the PDF is stored out of line and
// no list reads it; its code, of 32 characters of the codes' base32
// alphabet like a real one, is an md5 whose 0, 1, 8 and 9 are spelt w, x,
// y and z); three in ten a message from the applicant.
//
// It is one INSERT … SELECT per table, with the triggers and foreign keys
// off (session_replication_role: the counts they keep are written with the
// rows) and the secondary indexes dropped first and built after, as a
// restore would; then VACUUM ANALYZE, which autovacuum would do in time.
func (sc *scale) seed(ctx context.Context, n int, st *scaleStage) error {
	conn, err := sc.s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	dem, err := json.Marshal(demandeur())
	if err != nil {
		return err
	}
	var before int64
	if err := conn.QueryRow(ctx, `SELECT coalesce(max(id), 0) FROM dossiers`).Scan(&before); err != nil {
		return err
	}
	rows, err := conn.Query(ctx, `
		SELECT pg_get_indexdef(i.indexrelid), i.indexrelid::regclass::text
		FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
		WHERE c.relname = ANY($1) AND NOT i.indisprimary AND NOT i.indisunique`, seedTables)
	if err != nil {
		return err
	}
	type index struct{ Def, Name string }
	indexes, err := pgx.CollectRows(rows, pgx.RowToStructByPos[index])
	if err != nil {
		return err
	}
	pdf := []byte("%PDF-1.7 seeded by bench-scale: a stand-in of 300 bytes for an attestation rendered long ago. " +
		"The list queries and the verification page read its sha256, never its bytes; GET attestation.pdf reads it whole.")
	steps := []struct {
		what string
		sql  string
		args []any
	}{
		{"settings", `SET session_replication_role = replica; SET maintenance_work_mem = '256MB'; SET synchronous_commit = off`, nil},
		{"dossiers", `
			INSERT INTO dossiers (procedure_id, state, usager_email, demandeur, motivation, decided_at,
				last_activity_at, created_at, updated_at, followers, expires_at, deleted_at, deletion_reason)
			SELECT p, st, CASE WHEN purged THEN '' ELSE 'u' || (g + $5) || '@etudiant.bench.example' END,
				CASE WHEN purged THEN '{}'
					ELSE jsonb_set(jsonb_set($4::jsonb, '{nom}', to_jsonb('Nom' || (g + $5))), '{prenom}', to_jsonb('Prénom' || (g % 997))) END,
				CASE WHEN st IN ('refuse', 'sans_suite') AND NOT purged THEN 'Pièces manquantes : le contrat de travail n''est pas signé.' END,
				decided, active, at, at, CASE WHEN st = 'en_construction' OR purged THEN 0 ELSE 1 END,
				expires, CASE WHEN purged THEN expires + interval '3 hours' END, CASE WHEN purged THEN 'expire' END
			FROM (
				SELECT *, expires < now() AS purged
				FROM (
					SELECT *, CASE WHEN st = 'en_instruction' THEN NULL
						ELSE coalesce(decided, active) + interval '12 months' END AS expires
					FROM (
						SELECT g, p, st, at,
							CASE WHEN st IN ('accepte', 'refuse', 'sans_suite') THEN at + interval '20 days' END AS decided,
							CASE WHEN st = 'en_construction' THEN now() - (g % 20) * interval '1 day' ELSE at END AS active
						FROM (
							SELECT g,
								CASE WHEN g % 2 = 0 THEN $2::bigint ELSE ($3::bigint[])[1 + (g / 2) % cardinality($3::bigint[])] END AS p,
								CASE WHEN q < 0.60 THEN 'accepte' WHEN q < 0.75 THEN 'refuse' WHEN q < 0.80 THEN 'sans_suite'
									WHEN q < 0.88 THEN 'en_instruction' ELSE 'en_construction' END AS st,
								now() - interval '730 days' * (1 - q) AS at
							FROM (SELECT g, g::float8 / $1::int AS q FROM generate_series(1, $1::int) g) s
						) s
					) s
				) s
			) s`, []any{n, sc.big.ID, sc.medium, dem, sc.seeded}},
		{"history", `
			INSERT INTO dossier_history (dossier_id, event, from_state, to_state, instructeur_email, motivation, at)
			SELECT d.id, 'passer_en_instruction', 'en_construction', 'en_instruction', ` + instructeurEmail + `, NULL, d.created_at + interval '10 days'
			FROM dossiers d WHERE d.id > $1 AND d.deleted_at IS NULL AND d.state <> 'en_construction'
			UNION ALL
			SELECT d.id, CASE d.state WHEN 'accepte' THEN 'accepter' WHEN 'refuse' THEN 'refuser' ELSE 'classer_sans_suite' END,
				'en_instruction', d.state, ` + instructeurEmail + `, d.motivation, d.decided_at
			FROM dossiers d WHERE d.id > $1 AND d.deleted_at IS NULL AND d.state IN ('accepte', 'refuse', 'sans_suite')`, []any{before, sc.big.ID}},
		{"follows", `
			INSERT INTO follows (dossier_id, instructeur_id, created_at, dossier_ouvert, procedure_id)
			SELECT d.id, i.id, d.created_at + interval '10 days', d.state = 'en_instruction', d.procedure_id
			FROM dossiers d JOIN instructeurs i ON i.email = ` + instructeurEmail + `
			WHERE d.id > $1 AND d.deleted_at IS NULL AND d.state <> 'en_construction'`, []any{before, sc.big.ID}},
		{"e-mails", `
			INSERT INTO email_deliveries (dossier_id, kind, recipient, status, attempts, message_id, created_at, sent_at)
			SELECT d.id, 'en_instruction', d.usager_email, 'sent', 1, 'seed.' || d.id || '.i@bench.example',
				d.created_at + interval '10 days', d.created_at + interval '10 days'
			FROM dossiers d WHERE d.id > $1 AND d.deleted_at IS NULL AND d.state <> 'en_construction'
			UNION ALL
			SELECT d.id, d.state, d.usager_email, 'sent', 1, 'seed.' || d.id || '.d@bench.example', d.decided_at, d.decided_at
			FROM dossiers d WHERE d.id > $1 AND d.deleted_at IS NULL AND d.state IN ('accepte', 'refuse')`, []any{before}},
		{"messages", `
			INSERT INTO activities (dossier_id, kind, author, body, at)
			SELECT d.id, 'message_usager', 'usager', 'Bonjour, je joins la promesse d''embauche signée.', d.created_at + interval '2 days'
			FROM dossiers d WHERE d.id > $1 AND d.deleted_at IS NULL AND d.id % 10 < 3`, []any{before}},
		{"webhooks", `
			WITH ev AS (
				INSERT INTO webhook_events (procedure_id, type, data, occurred_at)
				SELECT d.procedure_id, 'dossier.state_changed',
					jsonb_build_object('dossier_id', d.id, 'procedure_id', d.procedure_id, 'from', 'en_instruction', 'to', d.state),
					d.decided_at
				FROM dossiers d WHERE d.id > $1 AND d.procedure_id = $2 AND d.deleted_at IS NULL AND d.decided_at IS NOT NULL
				RETURNING id, occurred_at
			)
			INSERT INTO webhook_deliveries (event_id, subscription_id, status, attempts, last_status_code, last_attempt_at, delivered_at, created_at)
			SELECT id, $3, 'delivered', 1, 204, occurred_at, occurred_at, occurred_at FROM ev`, []any{before, sc.big.ID, sc.big.Webhook}},
		{"attestations", `
			INSERT INTO attestations (dossier_id, code, pdf, sha256, rendered_at, created_at)
			SELECT d.id, translate(md5('bench-scale ' || d.id), '0189', 'wxyz'),
				CASE WHEN d.deleted_at IS NULL THEN $2::bytea END,
				CASE WHEN d.deleted_at IS NULL THEN encode(sha256($2::bytea), 'hex') END, d.decided_at, d.decided_at
			FROM dossiers d WHERE d.id > $1 AND d.state = 'accepte'`, []any{before, pdf}},
	}
	for _, ix := range indexes {
		if _, err := conn.Exec(ctx, `DROP INDEX `+ix.Name); err != nil {
			return fmt.Errorf("drop %s: %w", ix.Name, err)
		}
	}
	for _, step := range steps {
		t := time.Now()
		tag, err := conn.Exec(ctx, step.sql, step.args...)
		if err != nil {
			return fmt.Errorf("seed %s: %w", step.what, err)
		}
		if step.what != "settings" {
			st.SeedSteps = append(st.SeedSteps, fmt.Sprintf("%s %d rows in %s", step.what, tag.RowsAffected(), time.Since(t).Round(time.Second)))
		}
	}
	t := time.Now()
	for _, ix := range indexes {
		if _, err := conn.Exec(ctx, ix.Def); err != nil {
			return fmt.Errorf("%s: %w", ix.Def, err)
		}
	}
	st.SeedSteps = append(st.SeedSteps, fmt.Sprintf("%d indexes rebuilt in %s", len(indexes), time.Since(t).Round(time.Second)))
	t = time.Now()
	if _, err := conn.Exec(ctx, `RESET session_replication_role`); err != nil {
		return err
	}
	if !sc.o.vacuum {
		st.SeedSteps = append(st.SeedSteps, "no VACUUM ANALYZE")
		return nil
	}
	if _, err := conn.Exec(ctx, `VACUUM ANALYZE dossiers, dossier_history, follows, activities, email_deliveries, attestations, instructeurs, procedure_instructeurs, procedures, webhook_events, webhook_deliveries`); err != nil {
		return fmt.Errorf("vacuum: %w", err)
	}
	st.SeedSteps = append(st.SeedSteps, fmt.Sprintf("VACUUM ANALYZE in %s", time.Since(t).Round(time.Second)))
	return nil
}
