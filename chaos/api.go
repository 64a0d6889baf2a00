package main

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aptflow/aptflow/internal/harness"
)

// Every name and address chaos gives aptflow: the log check looks for each
// of them in every log line.
const (
	prenom        = "Zéphyrine"
	nom           = "Chaosdupré"
	instructeur   = "camille.chaos@prefecture.chaos.localhost"
	instNom       = "Camille Chaosmartin"
	usagerDomain  = "etudiant.chaos.localhost"
	motivation    = "Pièces complètes, contrat signé — motivation chaos."
	employeurNom  = "Boulangerie Chaos & Fils"
	concurrentAPI = 8
)

// personalData is what must never appear in a log: the names (their
// ASCII start too, which a JSON escape of « é » would not hide), the
// instructeur's address, every applicant's address (all under
// usagerDomain), the motivation and the employer.
var personalData = []string{prenom, "Chaosdupr", instructeur, "Chaosmartin", usagerDomain, "motivation chaos", "Boulangerie Chaos"}

// apiClient calls aptflow's HTTP API, with chaos's requests on top.
type apiClient struct{ *harness.API }

func newAPIClient(base, token string) *apiClient {
	return &apiClient{harness.NewAPI(base, token, 64, 30*time.Second)}
}

// event posts an event and returns the status (0: no answer).
func (c *apiClient) event(ctx context.Context, id int64, event string, silent bool) (int, error) {
	status, _, err := c.eventAnswer(ctx, id, event, silent)
	return status, err
}

// eventAnswer posts an event and returns the status (0: no answer) and the
// answer's Content-Type.
func (c *apiClient) eventAnswer(ctx context.Context, id int64, event string, silent bool) (int, string, error) {
	in := map[string]any{"event": event, "instructeur": instructeur, "disable_notification": silent}
	if event == "accepter" {
		in["motivation"] = motivation
	}
	status, ct, _, err := c.Do(ctx, http.MethodPost, "/v1/dossiers/"+strconv.FormatInt(id, 10)+"/events", in)
	return status, ct, err
}

// apiDossier is what chaos reads of a dossier.
type apiDossier struct {
	ID     int64  `json:"id"`
	State  string `json:"state"`
	Emails []struct {
		Kind      string  `json:"kind"`
		To        string  `json:"to"`
		Status    string  `json:"status"`
		Attempts  int     `json:"attempts"`
		LastError *string `json:"last_error"`
	} `json:"emails"`
}

func (c *apiClient) dossier(ctx context.Context, id int64) (*apiDossier, error) {
	var d apiDossier
	err := c.Call(ctx, http.StatusOK, http.MethodGet, "/v1/dossiers/"+strconv.FormatInt(id, 10), nil, &d)
	return &d, err
}

// world is the procedure and instructeur every fault uses.
type world struct {
	c    *apiClient
	proc int64
	seq  atomic.Int64
}

func newWorld(ctx context.Context, c *apiClient) (*world, error) {
	w := &world{c: c}
	var p struct{ ID int64 }
	if err := c.Call(ctx, http.StatusCreated, http.MethodPost, "/v1/procedures", map[string]any{
		"libelle":          "Autorisation provisoire de travail (APT) pour les étudiants",
		"service":          map[string]any{"nom": "Préfecture du Rhône", "adresse": "106 rue Pierre Corneille\n69003 Lyon"},
		"stale_after_days": 30,
		"heures_hebdo_max": 20,
	}, &p); err != nil {
		return nil, err
	}
	w.proc = p.ID
	err := c.Call(ctx, http.StatusCreated, http.MethodPost, "/v1/procedures/"+strconv.FormatInt(w.proc, 10)+"/instructeurs",
		map[string]any{"email": instructeur, "nom": instNom}, nil)
	return w, err
}

// dossier is one dossier chaos created.
type dossier struct {
	ID     int64
	Usager string
}

// dossiers creates n dossiers of the fault tag, their applicants'
// addresses under usagerDomain (those of the first `rejected` refused by
// the relay), and, with instruct, passes them en instruction without
// e-mail, ready to be decided.
func (w *world) dossiers(ctx context.Context, n int, tag string, rejected int, instruct bool) ([]dossier, error) {
	out := make([]dossier, n)
	err := parallel(ctx, n, concurrentAPI, func(ctx context.Context, i int) error {
		local := tag + "-" + strconv.FormatInt(w.seq.Add(1), 10)
		if i < rejected {
			local = rejectedPrefix + local
		}
		usager := local + "@" + usagerDomain
		var d struct{ ID int64 }
		if err := w.c.Call(ctx, http.StatusCreated, http.MethodPost, "/v1/dossiers", map[string]any{
			"procedure_id": w.proc, "usager_email": usager, "demandeur": demandeur(),
		}, &d); err != nil {
			return err
		}
		out[i] = dossier{ID: d.ID, Usager: usager}
		if !instruct {
			return nil
		}
		status, err := w.c.event(ctx, d.ID, "passer_en_instruction", true)
		if err == nil && status != http.StatusOK {
			err = fmt.Errorf("passer_en_instruction %d: %d", d.ID, status)
		}
		return err
	})
	return out, err
}

func demandeur() map[string]any {
	return map[string]any{
		"nom": nom, "prenom": prenom,
		"date_naissance": "2003-04-12", "lieu_naissance": "Montréal (Canada)", "nationalite": "canadienne",
		"titre_sejour":  map[string]any{"numero": "6912345678", "expire_le": "2031-09-30"},
		"etablissement": "Université Lumière Lyon 2",
		"employeur": map[string]any{
			"raison_sociale": employeurNom, "siret": "73282932000074",
			"adresse": "3 place Bellecour, 69002 Lyon",
		},
		"emploi": "vendeuse en boulangerie", "heures_hebdo": 17.5,
		"date_debut": "2030-12-01", "date_fin": "2031-06-30",
	}
}

// parallel runs op(0) … op(n-1) with workers goroutines and returns the
// first error.
func parallel(ctx context.Context, n, workers int, op func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next atomic.Int64
	var once sync.Once
	var first error
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := op(ctx, i); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
			}
		})
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// paced runs op(0) … op(n-1) at rate per second (each in its own
// goroutine, at most workers at once), and waits for them all.
func paced(ctx context.Context, n int, rate float64, workers int, op func(ctx context.Context, i int)) {
	interval := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	sem := make(chan struct{}, workers)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		if harness.Sleep(ctx, time.Until(start.Add(time.Duration(i)*interval))) != nil {
			break
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			op(ctx, i)
		})
	}
	wg.Wait()
}
