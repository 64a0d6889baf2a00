package workflow_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/jackc/pgx/v5"

	"github.com/aptflow/aptflow/workflow"
)

// Creating a dossier from Go validates the demandeur like the API does:
// the error is a *workflow.Error with one FieldError per bad field, and
// nothing is written.
func ExampleService_CreateDossierTx() {
	ctx := context.Background()
	svc, pool := newExampleService(ctx) // as in ExampleService_TransitionTx
	defer pool.Close()
	dem := exampleDemandeur()
	dem["employeur"].(map[string]any)["siret"] = "73282932000075" // a wrong check digit
	dem["heures_hebdo"] = 35                                      // over the procedure's 20

	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		_, err := svc.CreateDossierTx(ctx, tx, workflow.DossierInput{
			ProcedureID: exampleProcedure(ctx, svc), UsagerEmail: "elodie.dupre@example.fr", Demandeur: mustJSON(dem),
		})
		return err
	})
	var verr *workflow.Error
	if !errors.As(err, &verr) {
		log.Fatal(err)
	}
	fmt.Println(verr.Code)
	for _, f := range verr.Fields {
		fmt.Println(f.Field, f.Code)
	}
	// Output:
	// validation_failed
	// demandeur.employeur.siret invalid_siret
	// demandeur.heures_hebdo out_of_range
}
