package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aptflow/aptflow/internal/explain"
	"github.com/aptflow/aptflow/internal/harness"
	"github.com/aptflow/aptflow/workflow"
)

// scaleStage is what one stage measured: latencies by route and procedure.
type scaleStage struct {
	Size      int
	Seeded    int
	SeedTime  time.Duration
	SeedSteps []string
	Samples   map[string][]time.Duration // by sampleKey
	Routes    []string                   // in the order measured
	Notes     []string
}

func sampleKey(route, proc string) string { return route + "\x00" + proc }

func (st *scaleStage) add(route, proc string, d time.Duration) {
	k := sampleKey(route, proc)
	if _, ok := st.Samples[k]; !ok && !slices.Contains(st.Routes, route) {
		st.Routes = append(st.Routes, route)
	}
	st.Samples[k] = append(st.Samples[k], d)
}

// The routes whose latency the targets judge.
const (
	routeTabs = "GET /v1/instructeurs/{email}/dossiers?tab="
	routeGet  = "GET /v1/dossiers/{id}"
	routePDF  = "GET /v1/dossiers/{id}/attestation.pdf"
	routeCode = "GET /attestations/{code}"
	routeEvts = "POST /v1/dossiers/{id}/events "
)

// isRead says whether a route reads only.
func isRead(route string) bool { return strings.HasPrefix(route, "GET ") }

// timed runs op n times, one after the other, and records each latency
// under route for p; a failed request stops it.
func timed(ctx context.Context, st *scaleStage, route string, p procedure, n int, op func(ctx context.Context, i int) error) error {
	for i := range n {
		start := time.Now()
		if err := op(ctx, i); err != nil {
			return fmt.Errorf("%s (%s): %w", route, p.Name, err)
		}
		st.add(route, p.Name, time.Since(start))
	}
	return nil
}

// forwarded numbers the verification page's clients (X-Forwarded-For).
var forwarded atomic.Int64

// measure measures every route for the small and the big procedure: the
// reads first, on an idle system, then the writes, whose jobs run beside
// them as in production.
func (sc *scale) measure(ctx context.Context, st *scaleStage) error {
	for _, p := range []procedure{sc.small, sc.big} {
		if err := sc.reads(ctx, st, p); err != nil {
			return err
		}
	}
	for _, p := range []procedure{sc.small, sc.big} {
		if err := sc.writes(ctx, st, p); err != nil {
			return err
		}
	}
	return nil
}

// reads measures the read routes of p.
func (sc *scale) reads(ctx context.Context, st *scaleStage, p procedure) error {
	n := sc.o.reads
	for _, tab := range []string{workflow.TabASuivre, workflow.TabSuivis, workflow.TabTraites, workflow.TabExpirant, workflow.TabTous} {
		path := "/v1/instructeurs/" + url.PathEscape(p.Instructeur) + "/dossiers?tab=" + tab
		if err := timed(ctx, st, routeTabs+tab, p, n, func(ctx context.Context, _ int) error {
			_, err := sc.call(ctx, http.StatusOK, http.MethodGet, path, nil, nil)
			return err
		}); err != nil {
			return err
		}
	}
	deleted := "/v1/procedures/" + strconv.FormatInt(p.ID, 10) + "/dossiers_supprimes"
	if err := timed(ctx, st, "GET /v1/procedures/{id}/dossiers_supprimes", p, n, func(ctx context.Context, _ int) error {
		_, err := sc.call(ctx, http.StatusOK, http.MethodGet, deleted, nil, nil)
		return err
	}); err != nil {
		return err
	}
	hooks := "/v1/procedures/" + strconv.FormatInt(p.ID, 10) + "/webhooks"
	if err := timed(ctx, st, "GET /v1/procedures/{id}/webhooks", p, n, func(ctx context.Context, _ int) error {
		_, err := sc.call(ctx, http.StatusOK, http.MethodGet, hooks, nil, nil)
		return err
	}); err != nil {
		return err
	}
	deliveries := hooks + "/" + strconv.FormatInt(p.Webhook, 10) + "/deliveries"
	if err := timed(ctx, st, "GET /v1/procedures/{id}/webhooks/{wid}/deliveries", p, n, func(ctx context.Context, _ int) error {
		_, err := sc.call(ctx, http.StatusOK, http.MethodGet, deliveries, nil, nil)
		return err
	}); err != nil {
		return err
	}
	rows, _ := sc.s.pool.Query(ctx, `SELECT id FROM dossiers WHERE procedure_id = $1 AND deleted_at IS NULL ORDER BY random() LIMIT $2`, p.ID, n)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return err
	}
	if err := timed(ctx, st, routeGet, p, n, func(ctx context.Context, i int) error {
		_, err := sc.call(ctx, http.StatusOK, http.MethodGet, "/v1/dossiers/"+strconv.FormatInt(ids[i%len(ids)], 10), nil, nil)
		return err
	}); err != nil {
		return err
	}
	rows, _ = sc.s.pool.Query(ctx, `
		SELECT a.dossier_id, a.code FROM attestations a JOIN dossiers d ON d.id = a.dossier_id
		WHERE d.procedure_id = $1 AND a.pdf IS NOT NULL ORDER BY random() LIMIT $2`, p.ID, n)
	type attestation struct {
		ID   int64
		Code string
	}
	as, err := pgx.CollectRows(rows, pgx.RowToStructByPos[attestation])
	if err != nil {
		return err
	}
	if err := timed(ctx, st, routePDF, p, n, func(ctx context.Context, i int) error {
		_, err := sc.call(ctx, http.StatusOK, http.MethodGet, "/v1/dossiers/"+strconv.FormatInt(as[i%len(as)].ID, 10)+"/attestation.pdf", nil, nil)
		return err
	}); err != nil {
		return err
	}
	for _, accept := range []string{"application/json", "text/html"} {
		route := routeCode + " (" + accept + ")"
		if err := timed(ctx, st, route, p, n, func(ctx context.Context, i int) error {
			c := forwarded.Add(1)
			h := http.Header{"Accept": {accept}, "X-Forwarded-For": {fmt.Sprintf("10.%d.%d.%d", c>>16&255, c>>8&255, c&255)}}
			_, err := sc.call(ctx, http.StatusOK, http.MethodGet, "/attestations/"+as[i%len(as)].Code, nil, h)
			return err
		}); err != nil {
			return err
		}
	}
	return nil
}

// writes measures the write routes of p on dossiers it creates: each goes
// into instruction, back, and in again, then a third of them is accepted, a
// third refused, a third classé sans suite.
func (sc *scale) writes(ctx context.Context, st *scaleStage, p procedure) error {
	n := sc.o.writes
	ids := make([]int64, n)
	tag := fmt.Sprintf("w%d-%s", st.Size, p.Name)
	if err := timed(ctx, st, "POST /v1/dossiers", p, n, func(ctx context.Context, i int) (err error) {
		ids[i], err = sc.apiDossier(ctx, p, fmt.Sprintf("%s-%d", tag, i))
		return err
	}); err != nil {
		return err
	}
	path := func(i int, rest string) string { return "/v1/dossiers/" + strconv.FormatInt(ids[i], 10) + rest }
	inst := url.PathEscape(p.Instructeur)
	steps := []struct {
		route  string
		method string
		rest   string
		status int
		body   func(i int) any
	}{
		{"PATCH /v1/dossiers/{id}", http.MethodPatch, "", http.StatusOK, func(int) any {
			return map[string]any{"demandeur": map[string]any{"emploi": "vendeuse en boulangerie, le samedi"}}
		}},
		{"POST /v1/dossiers/{id}/messages (usager)", http.MethodPost, "/messages", http.StatusCreated, func(int) any {
			return map[string]any{"from": "usager", "body": "Bonjour, voici la promesse d'embauche signée."}
		}},
		{"PUT /v1/dossiers/{id}/followers/{email}", http.MethodPut, "/followers/" + inst, http.StatusNoContent, nil},
		{"DELETE /v1/dossiers/{id}/followers/{email}", http.MethodDelete, "/followers/" + inst, http.StatusNoContent, nil},
		{routeEvts + "passer_en_instruction", http.MethodPost, "/events", http.StatusOK, eventBody(p, "passer_en_instruction")},
		{"POST /v1/dossiers/{id}/messages (instructeur)", http.MethodPost, "/messages", http.StatusCreated, func(int) any {
			return map[string]any{"from": p.Instructeur, "body": "Merci, le dossier est complet."}
		}},
		{"POST /v1/dossiers/{id}/avis", http.MethodPost, "/avis", http.StatusCreated, func(int) any {
			return map[string]any{"expert": "expert@travail.bench.example", "body": "Avis favorable : l'emploi respecte la durée autorisée."}
		}},
		{routeEvts + "repasser_en_construction", http.MethodPost, "/events", http.StatusOK, eventBody(p, "repasser_en_construction")},
		{routeEvts + "passer_en_instruction", http.MethodPost, "/events", http.StatusOK, eventBody(p, "passer_en_instruction")},
	}
	for _, s := range steps {
		if err := timed(ctx, st, s.route, p, n, func(ctx context.Context, i int) error {
			var body any
			if s.body != nil {
				body = s.body(i)
			}
			_, err := sc.call(ctx, s.status, s.method, path(i, s.rest), body, nil)
			return err
		}); err != nil {
			return err
		}
	}
	for k, ev := range []string{"accepter", "refuser", "classer_sans_suite"} {
		part := ids[k*n/3 : (k+1)*n/3]
		if err := timed(ctx, st, routeEvts+ev, p, len(part), func(ctx context.Context, i int) error {
			return sc.event(ctx, p, part[i], ev)
		}); err != nil {
			return err
		}
	}
	prefs := "/v1/instructeurs/" + inst + "/preferences"
	if err := timed(ctx, st, "PUT /v1/instructeurs/{email}/preferences", p, n, func(ctx context.Context, i int) error {
		mode := "none"
		if i%2 == 1 || i == n-1 {
			mode = "instant"
		}
		_, err := sc.call(ctx, http.StatusOK, http.MethodPut, prefs, map[string]any{"notifications": mode}, nil)
		return err
	}); err != nil {
		return err
	}
	again := "/v1/procedures/" + strconv.FormatInt(p.ID, 10) + "/instructeurs"
	if err := timed(ctx, st, "POST /v1/procedures/{id}/instructeurs", p, n, func(ctx context.Context, _ int) error {
		_, err := sc.call(ctx, http.StatusOK, http.MethodPost, again, map[string]any{"email": p.Instructeur, "nom": "Camille Instructrice"}, nil)
		return err
	}); err != nil {
		return err
	}
	if err := sc.webhookWrites(ctx, st, p, n/5); err != nil {
		return err
	}
	return timed(ctx, st, "POST /v1/procedures", p, n/5, func(ctx context.Context, i int) error {
		_, err := sc.call(ctx, http.StatusCreated, http.MethodPost, "/v1/procedures", procedureInput(fmt.Sprintf("Sous-préfecture %s %d", tag, i)), nil)
		return err
	})
}

// webhookWrites measures the webhooks' write routes of p, n of each:
// subscriptions created then deleted at once (a procedure has at most 20,
// and they would add deliveries), and retries of its subscription's latest
// deliveries.
func (sc *scale) webhookWrites(ctx context.Context, st *scaleStage, p procedure, n int) error {
	hooks := "/v1/procedures/" + strconv.FormatInt(p.ID, 10) + "/webhooks"
	for range n {
		var id int64
		if err := timed(ctx, st, "POST /v1/procedures/{id}/webhooks", p, 1, func(ctx context.Context, _ int) error {
			body, err := sc.call(ctx, http.StatusCreated, http.MethodPost, hooks,
				map[string]any{"url": sc.s.hooks.URL, "events": []string{workflow.WebhookDossierStateChanged}}, nil)
			if err != nil {
				return err
			}
			var h struct{ ID int64 }
			err = json.Unmarshal(body, &h)
			id = h.ID
			return err
		}); err != nil {
			return err
		}
		if err := timed(ctx, st, "DELETE /v1/procedures/{id}/webhooks/{wid}", p, 1, func(ctx context.Context, _ int) error {
			_, err := sc.call(ctx, http.StatusNoContent, http.MethodDelete, hooks+"/"+strconv.FormatInt(id, 10), nil, nil)
			return err
		}); err != nil {
			return err
		}
	}
	rows, _ := sc.s.pool.Query(ctx, `SELECT id FROM webhook_deliveries WHERE subscription_id = $1 ORDER BY id DESC LIMIT $2`, p.Webhook, n)
	dids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil || len(dids) == 0 {
		return fmt.Errorf("deliveries of webhook %d: %d, %v", p.Webhook, len(dids), err)
	}
	return timed(ctx, st, "POST /v1/procedures/{id}/webhooks/{wid}/deliveries/{did}/retry", p, n, func(ctx context.Context, i int) error {
		_, err := sc.call(ctx, http.StatusAccepted, http.MethodPost,
			hooks+"/"+strconv.FormatInt(p.Webhook, 10)+"/deliveries/"+strconv.FormatInt(dids[i%len(dids)], 10)+"/retry", nil, nil)
		return err
	})
}

// eventBody is the body of p's instructeur's event.
func eventBody(p procedure, event string) func(int) any {
	return func(int) any { return map[string]any{"event": event, "instructeur": p.Instructeur} }
}

// scalePlan is the plan of one tab's query, as EXPLAIN (ANALYZE, BUFFERS)
// prints it.
type scalePlan struct {
	Procedure, Tab, Text string
}

// plans explains the tab queries of both procedures' instructeurs, run by
// workflow.Service itself on connections that explain every statement.
func (sc *scale) plans(ctx context.Context) ([]scalePlan, error) {
	log := &explain.Log{TextFormat: true}
	pool, err := log.Open(ctx, sc.s.dbURL, 1)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	svc := workflow.NewService(pool, nil, workflow.Options{})
	var out []scalePlan
	for _, p := range []procedure{sc.small, sc.big} {
		for _, tab := range []string{workflow.TabASuivre, workflow.TabSuivis, workflow.TabTraites, workflow.TabExpirant, workflow.TabTous} {
			if _, err := svc.ListForInstructeur(ctx, p.Instructeur, workflow.ListFilter{Tab: tab}); err != nil {
				return out, err
			}
			plans, err := log.Take()
			if err != nil {
				return out, err
			}
			for _, pl := range plans {
				// The tab's query, not the instructeur's lookup before it.
				if strings.Contains(pl.Query, "WITH page AS") {
					out = append(out, scalePlan{Procedure: p.Name, Tab: tab, Text: pl.Text})
				}
			}
		}
	}
	return out, nil
}

// mailResult is how long decision e-mails took while a stale scan's
// reminders were queued.
type mailResult struct {
	Reminders, Bulk  int           // reminders the scan queued; bulk e-mails in all
	ScanTime         time.Duration // of aptflow scan-stale
	Delays           map[string][]time.Duration
	BulkSentBefore   int // bulk e-mails sent before the last decision e-mail
	DecisionsPerProc int
}

// decisionsBehindBulk makes reminders dossiers stale, runs aptflow
// scan-stale as the cron would, then accepts decisions dossiers of each
// procedure, one every half second, and measures from each HTTP 200 to
// mailpit's Created of its e-mail, with the attestation.
func (sc *scale) decisionsBehindBulk(ctx context.Context) (*mailResult, error) {
	res := &mailResult{Delays: map[string][]time.Duration{}, DecisionsPerProc: sc.o.decisions}
	if err := sc.waitIdle(ctx, 10*time.Minute); err != nil {
		return res, err
	}
	type decision struct {
		p         procedure
		id        int64
		recipient string
		done      time.Time
	}
	var ds []*decision
	for _, p := range []procedure{sc.small, sc.big} {
		for i := range sc.o.decisions {
			tag := fmt.Sprintf("decision-%s-%d", p.Name, i)
			id, err := sc.apiDossier(ctx, p, tag)
			if err == nil {
				err = sc.event(ctx, p, id, "passer_en_instruction")
			}
			if err != nil {
				return res, err
			}
			ds = append(ds, &decision{p: p, id: id, recipient: tag + "@etudiant.bench.example"})
		}
	}
	if err := sc.waitIdle(ctx, 5*time.Minute); err != nil {
		return res, err
	}
	if _, err := sc.s.pool.Exec(ctx, `
		UPDATE dossiers SET last_activity_at = now() - interval '60 days'
		WHERE id IN (SELECT id FROM dossiers WHERE state = 'en_construction' AND stale_since IS NULL
			AND deleted_at IS NULL AND procedure_id <> $1 ORDER BY id LIMIT $2)`, sc.small.ID, sc.o.reminders); err != nil {
		return res, err
	}
	sc.logf("aptflow scan-stale over %d stale dossiers", sc.o.reminders)
	start := time.Now()
	if out, err := sc.s.aptflow().Command(ctx, nil, "scan-stale").CombinedOutput(); err != nil {
		return res, fmt.Errorf("aptflow scan-stale: %w\n%s", err, out)
	}
	res.ScanTime = time.Since(start)
	if err := sc.s.pool.QueryRow(ctx, `
		SELECT count(*) FILTER (WHERE kind = 'stale_usager'), count(*) FROM email_deliveries
		WHERE kind IN ('stale_usager', 'stale_instructeur') AND created_at >= $1`, start).Scan(&res.Reminders, &res.Bulk); err != nil {
		return res, err
	}
	sc.logf("%d bulk e-mails queued in %s; accepting %d dossiers", res.Bulk, res.ScanTime.Round(time.Second), len(ds))
	for _, d := range ds {
		if err := sc.event(ctx, d.p, d.id, "accepter"); err != nil {
			return res, err
		}
		d.done = time.Now()
		if err := harness.Sleep(ctx, 500*time.Millisecond); err != nil {
			return res, err
		}
	}
	for _, d := range ds {
		var created time.Time
		err := harness.WaitFor(ctx, nil, 15*time.Minute, func(ctx context.Context) error {
			msgs, err := sc.s.mp.Search(ctx, "to:"+d.recipient+" subject:accepté")
			if err != nil {
				return err
			}
			if len(msgs) == 0 {
				return fmt.Errorf("no acceptance e-mail to %s", d.recipient)
			}
			created = msgs[0].Created
			return nil
		})
		if err != nil {
			return res, err
		}
		res.Delays[d.p.Name] = append(res.Delays[d.p.Name], created.Sub(d.done))
	}
	ids := make([]int64, len(ds))
	for i, d := range ds {
		ids[i] = d.id
	}
	err := sc.s.pool.QueryRow(ctx, `
		SELECT count(*) FROM email_deliveries
		WHERE kind IN ('stale_usager', 'stale_instructeur') AND created_at >= $1 AND status = 'sent'
			AND sent_at < (SELECT max(sent_at) FROM email_deliveries WHERE dossier_id = ANY($2) AND kind = 'accepte')`,
		start, ids).Scan(&res.BulkSentBefore)
	return res, err
}
