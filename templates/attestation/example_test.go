package attestation_test

import (
	"bytes"
	"fmt"
	"time"

	"github.com/aptflow/aptflow/templates/attestation"
)

func ExampleRenderer_Render() {
	r, err := attestation.NewRenderer() // once, at start
	if err != nil {
		panic(err)
	}
	pdf, err := r.Render(attestation.Data{
		DossierID:              42,
		ServiceNom:             "Préfecture du Rhône",
		Nom:                    "Dupré",
		Prenom:                 "Élodie",
		EmployeurRaisonSociale: "Boulangerie des Terreaux",
		EmployeurSiret:         "73282932000074",
		HeuresHebdo:            17.5,
		DecidedAt:              time.Date(2025, time.March, 12, 13, 5, 0, 0, time.UTC),
		VerificationCode:       "K7Q2-M9XD-4HPA",
		VerificationURL:        "https://aptflow.example.fr/attestations/K7Q2-M9XD-4HPA",
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(string(pdf[:8]), bytes.Contains(pdf, []byte("/Creator")))
	// Output: %PDF-1.3 true
}
