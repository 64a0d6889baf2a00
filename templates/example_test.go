package templates_test

import (
	"fmt"
	"log"
	"time"

	"github.com/aptflow/aptflow/templates"
	"github.com/aptflow/aptflow/workflow"
)

func ExampleTemplates_Email() {
	tpl, err := templates.Load() // once, at start
	if err != nil {
		log.Fatal(err)
	}
	e, err := tpl.Email(workflow.MailAccepte, templates.EmailData{
		DossierID:       42,
		ServiceNom:      "Préfecture du Rhône",
		Prenom:          "Élodie",
		Nom:             "Dupré",
		DecidedAt:       time.Date(2026, time.November, 26, 13, 5, 0, 0, time.UTC),
		VerificationURL: "https://aptflow.example/attestations/3f9a",
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(e.Subject)
	fmt.Print(e.Text[:len("Bonjour Élodie Dupré,\n")])
	// Output:
	// Votre dossier nº 42 a été accepté
	// Bonjour Élodie Dupré,
}
