package mailer_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/aptflow/aptflow/jobs/mailer"
)

func Example() {
	dir, err := os.MkdirTemp("", "aptflow-mail")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// SMTP_URL unset: messages are written under MAIL_DIR.
	m, err := mailer.New("", dir, nil)
	if err != nil {
		log.Fatal(err)
	}
	msg := mailer.Message{
		MessageID: "aptflow.delivery.42@aptflow.example", // the same on every retry
		From:      "Préfecture du Rhône <noreply@aptflow.example>",
		To:        "Élodie Dupré <elodie@example.fr>",
		Subject:   "Votre dossier nº 42 a été accepté",
		Text:      "Bonjour Élodie Dupré,\n…",
		HTML:      "<p>Bonjour Élodie Dupré,</p>…",
		Date:      time.Date(2026, time.November, 26, 14, 5, 0, 0, time.UTC),
	}
	for range 2 { // a retry overwrites the same file
		if err := m.Send(context.Background(), msg); err != nil {
			var se *mailer.SendError
			if errors.As(err, &se) && !se.Temporary {
				log.Fatalf("give up: %v", err)
			}
			log.Fatalf("retry later: %v", err)
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
	for _, f := range files {
		fmt.Println(filepath.Base(f))
	}
	// Output: aptflow.delivery.42@aptflow.example.eml
}
