package workflow_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"

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
	pool, err := pgxpool.New(ctx, "postgres://postgres@127.0.0.1:5432/aptflow")
	if err != nil {
		log.Fatal(err)
	}
	// An insert-only River client: the workers run in `aptflow serve` or
	// `aptflow work`.
	cfg := jobs.Config{}
	client, err := jobs.NewClient(pool, cfg, nil)
	if err != nil {
		log.Fatal(err)
	}
	svc := workflow.NewService(pool, jobs.NewEnqueuer(client, cfg), workflow.Options{PublicURL: "https://apt.example.fr"})

	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		// The application's own write...
		if _, err := tx.Exec(ctx, `INSERT INTO my_audit (what) VALUES ('instruction')`); err != nil {
			return err
		}
		// ...and the transition, in the same transaction.
		d, err := svc.TransitionTx(ctx, tx, 42, workflow.Command{
			Event:       workflow.PasserEnInstruction,
			Instructeur: "camille.martin@rhone.gouv.fr",
		})
		if err != nil {
			return err // 409, 403...: *workflow.Error with a Code
		}
		fmt.Println(d.State)
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
}

// Creating a dossier from Go validates the demandeur like the API does.
func ExampleService_CreateDossierTx() {
	var svc *workflow.Service // built as in ExampleService_TransitionTx
	var tx pgx.Tx
	dem, _ := json.Marshal(map[string]any{"nom": "Dupré", "prenom": "Élodie" /* ... */})
	_, err := svc.CreateDossierTx(context.Background(), tx, workflow.DossierInput{
		ProcedureID: 1, UsagerEmail: "elodie.dupre@example.fr", Demandeur: dem,
	})
	var verr *workflow.Error
	if errors.As(err, &verr) {
		for _, f := range verr.Fields {
			fmt.Println(f.Field, f.Code)
		}
	}
}
