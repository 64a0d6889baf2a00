package main

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aptflow/aptflow/internal/harness"
	"github.com/aptflow/aptflow/jobs"
	"github.com/aptflow/aptflow/jobs/mailer"
	"github.com/aptflow/aptflow/templates"
	"github.com/aptflow/aptflow/templates/attestation"
	"github.com/aptflow/aptflow/workflow"
)

// attestationData is an attestation like those of the seeded dossiers.
func attestationData(id int64, publicURL string) attestation.Data {
	code := fmt.Sprintf("bench%027d", id)
	return attestation.Data{
		DossierID:              id,
		ServiceNom:             "Préfecture du Rhône",
		ServiceAdresse:         "106 rue Pierre Corneille\n69003 Lyon",
		ProcedureLibelle:       "Autorisation provisoire de travail (APT) pour les étudiants",
		Nom:                    "Dupré",
		Prenom:                 "Élodie",
		DateNaissance:          workflow.Date{Year: 2003, Month: time.April, Day: 12},
		LieuNaissance:          "Montréal (Canada)",
		Nationalite:            "canadienne",
		TitreSejourNumero:      "6912345678",
		TitreSejourExpireLe:    workflow.Date{Year: 2031, Month: time.September, Day: 30},
		Etablissement:          "Université Lumière Lyon 2",
		EmployeurRaisonSociale: "Boulangerie Œuvre & Fils",
		EmployeurSiret:         "73282932000074",
		EmployeurAdresse:       "3 place Bellecour, 69002 Lyon",
		Emploi:                 "vendeuse en boulangerie",
		HeuresHebdo:            17.5,
		DateDebut:              workflow.Date{Year: 2030, Month: time.December, Day: 1},
		DateFin:                workflow.Date{Year: 2031, Month: time.June, Day: 30},
		DecidedAt:              time.Now().Truncate(time.Second),
		SignataireNom:          "Claire Martin",
		SignataireQualite:      "Pour le préfet et par délégation",
		Motivation:             "Dossier complet.",
		VerificationCode:       code,
		VerificationURL:        workflow.VerificationURL(publicURL, code),
	}
}

// renderStage renders attestations in-process on every core for d, with
// the renderer aptflow uses, and returns renders per second.
func renderStage(ctx context.Context, d time.Duration, publicURL string) (rate float64, workers, renders int, err error) {
	r, err := attestation.NewRenderer()
	if err != nil {
		return 0, 0, 0, err
	}
	workers = runtime.GOMAXPROCS(0)
	var n atomic.Int64
	var firstErr error
	var once sync.Once
	start := time.Now()
	end := start.Add(d)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := int64(w); ctx.Err() == nil && time.Now().Before(end); i += int64(workers) {
				if _, err := r.Render(attestationData(i+1, publicURL)); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				n.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	return float64(n.Load()) / elapsed.Seconds(), workers, int(n.Load()), firstErr
}

// acceptanceMessage is the acceptance e-mail of dossier id with its PDF, as
// the e-mail worker composes it.
func acceptanceMessage(tpl *templates.Templates, pdf []byte, id int64, to, publicURL string) (mailer.Message, error) {
	data := attestationData(id, publicURL)
	email, err := tpl.Email(workflow.MailAccepte, templates.EmailData{
		DossierID:        id,
		ProcedureLibelle: data.ProcedureLibelle,
		ServiceNom:       data.ServiceNom,
		Prenom:           data.Prenom,
		Nom:              data.Nom,
		Motivation:       data.Motivation,
		DecidedAt:        data.DecidedAt,
		VerificationURL:  data.VerificationURL,
		PublicURL:        publicURL,
	})
	if err != nil {
		return mailer.Message{}, err
	}
	mailFrom := "Autorisation provisoire de travail <ne-pas-repondre@aptflow.localhost>"
	return mailer.Message{
		MessageID: "bench.stage." + strconv.FormatInt(id, 10) + "@aptflow.localhost",
		From:      mailFrom,
		To:        to,
		Subject:   email.Subject,
		Text:      email.Text,
		HTML:      email.HTML,
		Attachments: []mailer.Attachment{{
			Filename: templates.AttestationFilename(id), ContentType: "application/pdf", Data: pdf,
		}},
		Date: time.Now(),
		Headers: map[string]string{
			"Auto-Submitted":           "auto-generated",
			"X-Aptflow-Kind":           workflow.MailAccepte,
			"X-Auto-Response-Suppress": "All",
			"X-Aptflow-Dossier":        strconv.FormatInt(id, 10),
		},
	}, nil
}

// ingestStage sends acceptance e-mails with their PDF to mailpit with the
// project's SMTP mailer, from as many goroutines as the e-mail queue has
// workers, for d, and returns how many mailpit stored per second (until it
// holds them all).
func ingestStage(ctx context.Context, s *stack, d time.Duration) (rate float64, workers, sent int, err error) {
	tpl, err := templates.Load()
	if err != nil {
		return 0, 0, 0, err
	}
	r, err := attestation.NewRenderer()
	if err != nil {
		return 0, 0, 0, err
	}
	pdf, err := r.Render(attestationData(1, s.apiURL))
	if err != nil {
		return 0, 0, 0, err
	}
	m, err := mailer.NewSMTP("smtp://" + s.mp.SMTPAddr)
	if err != nil {
		return 0, 0, 0, err
	}
	if c, ok := any(m).(interface{ Close() error }); ok {
		defer c.Close()
	}
	var jc jobs.Config
	jc.Defaults()
	workers = jc.EmailWorkers
	const most = 1_000_000
	res := closedLoop(ctx, workers, most, d, func(ctx context.Context, i int) error {
		msg, err := acceptanceMessage(tpl, pdf, int64(i+1), fmt.Sprintf("s%d@stage.bench.localhost", i+1), s.apiURL)
		if err != nil {
			return err
		}
		return m.Send(ctx, msg)
	})
	if res.FirstErr != nil {
		return 0, workers, 0, fmt.Errorf("%d sends failed: %w", res.Failed, res.FirstErr)
	}
	stored, n, err := waitMail(ctx, s, res.OK, time.Minute)
	if err != nil {
		return 0, workers, 0, err
	}
	return float64(n) / stored.Sub(res.Start).Seconds(), workers, n, nil
}

// waitMail polls mailpit until it holds at least n messages, and returns
// when it saw them and how many there were; after timeout, an error with
// what arrived.
func waitMail(ctx context.Context, s *stack, n int, timeout time.Duration) (time.Time, int, error) {
	deadline := time.Now().Add(timeout)
	for {
		got, err := s.mp.Count(ctx, "")
		if err != nil {
			return time.Time{}, 0, err
		}
		if got >= n {
			return time.Now(), got, nil
		}
		if time.Now().After(deadline) {
			return time.Now(), got, fmt.Errorf("mailpit holds %d messages of %d after %s", got, n, timeout)
		}
		if err := harness.Sleep(ctx, 25*time.Millisecond); err != nil {
			return time.Time{}, got, err
		}
	}
}
