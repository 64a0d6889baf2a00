package main

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aptflow/aptflow/internal/harness"
	"github.com/aptflow/aptflow/internal/webhooktest"
)

// receiverDelay is how long chaos's webhook receiver takes to answer: long
// enough that deliveries are in flight, in both processes, when the work
// process is killed.
const receiverDelay = 100 * time.Millisecond

// perSubscription is aptflow's bound on one subscription's deliveries in
// flight in one process (jobs.Config.WebhookPerSubscription's default): a
// kill can duplicate at most that many of them.
const perSubscription = 4

// startReceiver starts the webhook receiver every fault's procedure may
// subscribe, and returns the environment that lets aptflow reach it and
// seal its secret.
func (s *stack) startReceiver() ([]string, error) {
	s.hooks = webhooktest.Start(func(webhooktest.Delivery, int) int {
		time.Sleep(receiverDelay)
		return http.StatusNoContent
	})
	return webhooktest.Env()
}

// webhookDelivery is a row of aptflow's webhook delivery log.
type webhookDelivery struct {
	ID     int64
	MsgID  string
	Status string
}

// webhookDeliveries reads the webhook deliveries of the events about some
// dossiers.
func (s *stack) webhookDeliveries(ctx context.Context, dossiers []int64) ([]webhookDelivery, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT d.id, e.msg_id, d.status FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id
		WHERE (e.data->>'dossier_id')::bigint = ANY($1) ORDER BY d.id`, dossiers)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[webhookDelivery])
}

// webhookKill kills the work process with SIGKILL several times while
// webhooks are delivered (each of its processes has some in flight: the
// receiver answers in 100 ms), restarting it each time. A delivery the
// receiver took just before a kill, but that the dead process could not
// record, is sent again by the rescued job with the same webhook-id: at
// most one per delivery in flight in the killed process.
func (r *runner) webhookKill(ctx context.Context) (row, error) {
	const n, rate = 300, 30.0
	row := row{
		Fault:    fmt.Sprintf("`kill -9` of `aptflow work` ×%d during webhook deliveries, restarted each time", r.o.kills),
		Load:     fmt.Sprintf("%d transitions, %.0f/s, each a webhook to a receiver that answers in %s", n, rate, receiverDelay),
		DupLimit: r.o.kills * perSubscription,
		DupWhy:   fmt.Sprintf("= %d in flight per kill", perSubscription),
	}
	proc := strconv.FormatInt(r.w.proc, 10)
	var hook struct {
		ID     int64
		Secret string
	}
	if err := r.w.c.Call(ctx, http.StatusCreated, http.MethodPost, "/v1/procedures/"+proc+"/webhooks",
		map[string]any{"url": r.s.hooks.URL, "events": []string{"dossier.state_changed"}}, &hook); err != nil {
		return row, err
	}
	defer func() {
		_ = r.w.c.Call(context.WithoutCancel(ctx), http.StatusNoContent, http.MethodDelete,
			"/v1/procedures/"+proc+"/webhooks/"+strconv.FormatInt(hook.ID, 10), nil, nil)
	}()
	if err := r.s.hooks.SetSecret(hook.Secret); err != nil {
		return row, err
	}
	ds, err := r.w.dossiers(ctx, n, "webhook", 0, false)
	if err != nil {
		return row, err
	}
	statuses := make([]int, n)
	burst := make(chan struct{})
	go func() {
		defer close(burst)
		paced(ctx, n, rate, concurrentAPI, func(ctx context.Context, i int) {
			statuses[i], _ = r.w.c.event(ctx, ds[i].ID, "passer_en_instruction", true)
		})
	}()
	inFlight, killed, lastKill, err := r.killRepeatedly(ctx, time.Duration(float64(n)/rate*float64(time.Second)))
	if err != nil {
		return row, err
	}
	<-burst
	if bad := notOK(statuses); bad != "" {
		row.Problems = append(row.Problems, "transitions not answered 200: "+bad)
	}

	// Settled: no delivery pending, then room for a wrongful late copy.
	var log []webhookDelivery
	for deadline := time.Now().Add(3 * time.Minute); ; {
		if log, err = r.s.webhookDeliveries(ctx, ids(ds)); err != nil {
			return row, err
		}
		waiting := 0
		for _, d := range log {
			if d.Status == "pending" {
				waiting++
			}
		}
		if len(log) > 0 && waiting == 0 {
			break
		}
		if time.Now().After(deadline) {
			row.Problems = append(row.Problems, fmt.Sprintf("%d webhook deliveries still pending after 3 minutes", waiting))
			break
		}
		if err := harness.Sleep(ctx, 250*time.Millisecond); err != nil {
			return row, err
		}
	}
	row.Recovery = time.Since(lastKill)
	row.RecoveryWhat = "last kill → every webhook delivered"
	if err := harness.Sleep(ctx, time.Second); err != nil {
		return row, err
	}

	received := map[string]int{}
	unverified := 0
	for _, d := range r.s.hooks.Deliveries() {
		received[d.ID]++
		if d.Verified != nil {
			unverified++
		}
	}
	var t tally
	for _, d := range log {
		t.add(d.ID, received[d.MsgID], d.Status == "delivered")
	}
	row.Tally = t
	if len(log) != n {
		row.Problems = append(row.Problems, fmt.Sprintf("%d webhook deliveries written for %d transitions", len(log), n))
	}
	if unverified > 0 {
		row.Problems = append(row.Problems, fmt.Sprintf("%d requests whose signature the reference library refused", unverified))
	}
	if dups := t.duplicated; len(dups) > 0 {
		fromKills, err := r.s.killedCopies(ctx, "deliver_webhook", dups, killed)
		if err != nil {
			return row, err
		}
		if fromKills != len(dups) {
			row.Problems = append(row.Problems, fmt.Sprintf("%d webhooks received twice, %d of them sent by a killed process and rescued", len(dups), fromKills))
		} else {
			row.Notes = append(row.Notes, fmt.Sprintf("each duplicate was first sent by a killed process and sent again by its rescued job, with the same webhook-id (deliveries %v)", dups))
		}
	}
	row.Notes = append(row.Notes, fmt.Sprintf("jobs running in the process at each kill: %v; every request verified by the Standard Webhooks reference library", inFlight))
	return row, nil
}
