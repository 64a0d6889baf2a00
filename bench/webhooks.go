package main

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/aptflow/aptflow/internal/webhooktest"
	"github.com/aptflow/aptflow/workflow"
)

// webhookEnv starts the bench's webhook receiver (it answers 204 at once
// and verifies every request with the reference library) and returns the
// configuration that lets aptflow reach it and seal its secret.
func (s *stack) webhookEnv() ([]string, error) {
	s.hooks = webhooktest.Start(nil)
	return webhooktest.Env()
}

// setupWebhooks creates, through the API, a second procedure with the same
// instructeur and one subscription to its transitions, to the receiver.
func (s *stack) setupWebhooks(ctx context.Context) error {
	var created struct {
		ID     int64  `json:"id"`
		Secret string `json:"secret"`
	}
	if err := s.api.Call(ctx, http.StatusCreated, http.MethodPost, "/v1/procedures", map[string]any{
		"libelle":          "Autorisation provisoire de travail (APT) pour les étudiants",
		"service":          map[string]any{"nom": "Préfecture de l'Ain", "adresse": "45 avenue Alsace-Lorraine\n01000 Bourg-en-Bresse"},
		"stale_after_days": 30,
		"heures_hebdo_max": 20,
	}, &created); err != nil {
		return err
	}
	s.hookedID = created.ID
	proc := "/v1/procedures/" + strconv.FormatInt(s.hookedID, 10)
	if err := s.api.Call(ctx, http.StatusCreated, http.MethodPost, proc+"/instructeurs",
		map[string]any{"email": s.instructeur, "nom": "Camille Instructrice"}, nil); err != nil {
		return err
	}
	if err := s.api.Call(ctx, http.StatusCreated, http.MethodPost, proc+"/webhooks",
		map[string]any{"url": s.hooks.URL, "events": []string{workflow.WebhookDossierStateChanged}}, &created); err != nil {
		return err
	}
	return s.hooks.SetSecret(created.Secret)
}

// webhookRounds is how many times the webhooks phase alternates the
// procedure without a subscriber and the one with: the machine's speed
// drifts over a run, and alternating spreads the drift over both.
const webhookRounds = 2

// webhooks measures transitions/s on a procedure with one webhook
// subscriber against the same on the procedure without, in alternating
// rounds; then the rate at which the receiver got their webhooks, and the
// latency from the HTTP 200 (the commit) to the receiver, at light load and
// at 80 % of that rate.
func (b *bench) webhooks(ctx context.Context, rep *report) error {
	s := b.s
	if err := s.setupWebhooks(ctx); err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	round := b.o.duration / webhookRounds
	for i := range webhookRounds {
		for _, hooked := range []bool{false, true} {
			proc, tag := s.procedureID, fmt.Sprintf("plain%d", i)
			if hooked {
				proc, tag = s.hookedID, fmt.Sprintf("hooked%d", i)
			}
			ds, err := s.seedIn(ctx, proc, 20_000, tag, string(workflow.EnConstruction))
			if err != nil {
				return err
			}
			before := s.hooks.Count()
			res := closedLoop(ctx, b.o.clients, len(ds), round, func(ctx context.Context, i int) error {
				return b.event(ctx, ds[i].ID, workflow.PasserEnInstruction)
			})
			if res.FirstErr != nil {
				return fmt.Errorf("%d transitions failed: %w", res.Failed, res.FirstErr)
			}
			if hooked {
				rep.WebhookHTTP = append(rep.WebhookHTTP, res)
				all, err := s.hooks.Wait(phaseTimeout, func(got []webhooktest.Delivery) bool { return len(got)-before >= res.OK })
				if err != nil {
					return err
				}
				rep.WebhookRates = append(rep.WebhookRates, float64(res.OK)/all[len(all)-1].At.Sub(res.Start).Seconds())
			} else {
				rep.PlainHTTP = append(rep.PlainHTTP, res)
			}
			if err := s.quiesce(ctx, phaseTimeout); err != nil {
				return err
			}
		}
	}
	var err error
	if rep.WebhookLight, err = b.webhookLatency(ctx, b.o.lightRate, "hooklight"); err != nil {
		return fmt.Errorf("at %.0f/s: %w", b.o.lightRate, err)
	}
	if err := s.quiesce(ctx, phaseTimeout); err != nil {
		return err
	}
	rate := 0.8 * mean(rep.WebhookRates)
	if rep.WebhookHeavy, err = b.webhookLatency(ctx, rate, "hookheavy"); err != nil {
		return fmt.Errorf("at %.0f/s: %w", rate, err)
	}
	for _, d := range s.hooks.Deliveries() {
		if d.Verified != nil {
			rep.WebhookUnverified++
		}
	}
	return nil
}

// webhookLatency runs passer_en_instruction on the subscribed procedure at
// rate for the latency duration and returns, for each webhook, the time
// from the HTTP 200 to its arrival at the receiver.
func (b *bench) webhookLatency(ctx context.Context, rate float64, tag string) (latencyResult, error) {
	s := b.s
	n := int(rate*b.o.latency.Seconds()) + 1
	ds, err := s.seedIn(ctx, s.hookedID, n, tag, string(workflow.EnConstruction))
	if err != nil {
		return latencyResult{}, err
	}
	before := s.hooks.Count()
	res := openLoop(ctx, rate, n, b.o.latency, func(ctx context.Context, i int) error {
		return b.event(ctx, ds[i].ID, workflow.PasserEnInstruction)
	})
	lr := latencyResult{Rate: rate}
	if res.FirstErr != nil {
		return lr, fmt.Errorf("%d transitions failed: %w", res.Failed, res.FirstErr)
	}
	got, err := s.hooks.Wait(phaseTimeout, func(got []webhooktest.Delivery) bool { return len(got)-before >= res.OK })
	if err != nil {
		return lr, err
	}
	arrived := map[int64]time.Time{}
	for _, d := range got[before:] {
		if _, seen := arrived[d.DossierID()]; !seen {
			arrived[d.DossierID()] = d.At
		}
	}
	for i, d := range ds {
		if at, ok := arrived[d.ID]; ok && !res.Done[i].IsZero() {
			lr.Samples = append(lr.Samples, at.Sub(res.Done[i]))
		}
	}
	if len(lr.Samples) != res.OK {
		return lr, fmt.Errorf("%d webhooks matched of %d transitions", len(lr.Samples), res.OK)
	}
	return lr, nil
}

func mean(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	sum := 0.0
	for _, v := range vs {
		sum += v
	}
	return sum / float64(len(vs))
}

// sumRate is the successful operations per second of several rounds.
func sumRate(rs []loadResult) float64 {
	ok, d := 0, time.Duration(0)
	for _, r := range rs {
		ok += r.OK
		d += r.Elapsed
	}
	if d <= 0 {
		return 0
	}
	return float64(ok) / d.Seconds()
}
