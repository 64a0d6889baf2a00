package workflow_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aptflow/aptflow/jobs"
	"github.com/aptflow/aptflow/workflow"
)

// An upstream Go application changes a dossier inside its own transaction,
// together with its own tables: the transition, its history row and its
// e-mail job commit with the application's writes, or not at all.
func ExampleService_TransitionTx() {
	ctx := context.Background()
	svc, pool := newExampleService(ctx)
	defer pool.Close()
	id := exampleDossier(ctx, svc)
	// The application's own table.
	if _, err := pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS my_audit (what text NOT NULL)`); err != nil {
		log.Fatal(err)
	}
	instruire := workflow.Command{Event: workflow.PasserEnInstruction, Instructeur: "camille.martin@rhone.gouv.fr"}

	// The application's write fails after the transition: neither happened.
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := svc.TransitionTx(ctx, tx, id, instruire); err != nil {
			return err // 409, 403...: a *workflow.Error with a Code
		}
		_, err := tx.Exec(ctx, `INSERT INTO my_audit (what) VALUES (NULL)`)
		return err
	})
	d, _ := svc.GetDossier(ctx, id)
	fmt.Printf("rolled back (%v): %s, %d e-mails\n", err != nil, d.State, len(d.Emails))

	// Both succeed: both commit, the e-mail job with them.
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		d, err := svc.TransitionTx(ctx, tx, id, instruire)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO my_audit (what) VALUES ('instruction')`); err != nil {
			return err
		}
		fmt.Printf("committed: %s, e-mail %s %s\n", d.State, d.Emails[0].Kind, d.Emails[0].Status)
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	// Output:
	// rolled back (true): en_construction, 0 e-mails
	// committed: en_instruction, e-mail en_instruction pending
}

// newExampleService builds the Service as an upstream application does:
// its pool, and an insert-only River client, since the workers run in
// `aptflow serve` or `aptflow work`.
func newExampleService(ctx context.Context) (*workflow.Service, *pgxpool.Pool) {
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	cfg := jobs.Config{}
	client, err := jobs.NewClient(pool, cfg, nil)
	if err != nil {
		log.Fatal(err)
	}
	return workflow.NewService(pool, jobs.NewEnqueuer(client, cfg), workflow.Options{PublicURL: "https://apt.example.fr"}), pool
}

// exampleProcedure creates a procedure that camille.martin@rhone.gouv.fr
// instructs.
func exampleProcedure(ctx context.Context, svc *workflow.Service) int64 {
	p, err := svc.CreateProcedure(ctx, workflow.ProcedureInput{
		Libelle:        "Autorisation provisoire de travail (APT) pour les étudiants",
		Service:        workflow.ProcedureService{Nom: "Préfecture du Rhône", Adresse: "18 rue de Bonnel\n69003 Lyon"},
		StaleAfterDays: 30,
		HeuresHebdoMax: 20,
	})
	if err != nil {
		log.Fatal(err)
	}
	if _, _, err := svc.AddInstructeur(ctx, p.ID, "camille.martin@rhone.gouv.fr", "Camille Martin"); err != nil {
		log.Fatal(err)
	}
	return p.ID
}

// exampleDemandeur is an APT request as the applicant's form sends it.
func exampleDemandeur() map[string]any {
	return map[string]any{
		"nom": "Dupré", "prenom": "Élodie",
		"date_naissance": "2003-04-12", "lieu_naissance": "Montréal (Canada)", "nationalite": "canadienne",
		"titre_sejour":  map[string]any{"numero": "6912345678", "expire_le": "2027-09-30"},
		"etablissement": "Université Lumière Lyon 2",
		"employeur": map[string]any{
			"raison_sociale": "Boulangerie Œuvre & Fils", "siret": "73282932000074", "adresse": "3 place Bellecour, 69002 Lyon",
		},
		"emploi": "vendeuse en boulangerie", "heures_hebdo": 17.5,
		"date_debut": "2026-12-01", "date_fin": "2027-06-30",
	}
}

// exampleDossier creates a dossier en construction on a new procedure.
func exampleDossier(ctx context.Context, svc *workflow.Service) int64 {
	d, err := svc.CreateDossier(ctx, workflow.DossierInput{
		ProcedureID: exampleProcedure(ctx, svc),
		UsagerEmail: "elodie.dupre@example.fr",
		Demandeur:   mustJSON(exampleDemandeur()),
	})
	if err != nil {
		log.Fatal(err)
	}
	return d.ID
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		log.Fatal(err)
	}
	return b
}
