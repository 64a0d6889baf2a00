package jobs_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aptflow/aptflow/internal/apptest"
	"github.com/aptflow/aptflow/internal/webhooktest"
)

// subscribe subscribes a receiver to a procedure's events through the API
// and gives it the secret; it returns the subscription's id.
func subscribe(t *testing.T, s *apptest.Stack, proc int64, rcv *webhooktest.Receiver, events ...string) int64 {
	t.Helper()
	if events == nil {
		events = []string{}
	}
	w := s.Must(201, "POST", fmt.Sprintf("/v1/procedures/%d/webhooks", proc), map[string]any{"url": rcv.URL, "events": events})
	secret, _ := w["secret"].(string)
	if !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("secret %q", secret)
	}
	if err := rcv.SetSecret(secret); err != nil {
		t.Fatal(err)
	}
	return int64(w["id"].(float64))
}

// startReceiver starts a receiver, closed at the end of the test.
func startReceiver(t *testing.T, respond webhooktest.Respond) *webhooktest.Receiver {
	t.Helper()
	r := webhooktest.Start(respond)
	t.Cleanup(r.Close)
	return r
}

// waitDeliveries waits until the receiver holds deliveries that satisfy
// cond, and returns them.
func waitDeliveries(t *testing.T, r *webhooktest.Receiver, timeout time.Duration, cond func([]webhooktest.Delivery) bool) []webhooktest.Delivery {
	t.Helper()
	got, err := r.Wait(timeout, cond)
	if err != nil {
		t.Fatalf("%v: %s", err, describeDeliveries(got))
	}
	return got
}

func describeDeliveries(ds []webhooktest.Delivery) string {
	var b strings.Builder
	for _, d := range ds {
		fmt.Fprintf(&b, "\n  %s %s %s status %d verified %v", d.ID, d.Type, d.Body, d.Status, d.Verified)
	}
	return b.String()
}

// deliveriesOf returns a subscription's delivery log through the API.
func deliveriesOf(t *testing.T, s *apptest.Stack, proc, wid int64) []map[string]any {
	t.Helper()
	r := s.Must(200, "GET", fmt.Sprintf("/v1/procedures/%d/webhooks/%d/deliveries", proc, wid), nil)
	var out []map[string]any
	for _, d := range r["deliveries"].([]any) {
		out = append(out, d.(map[string]any))
	}
	return out
}

// TestWebhookRetriedWithSameID: a receiver that answers 500 then 200 gets
// the same webhook-id and body twice, each attempt signed with its own
// timestamp and verified by the reference library; the delivery log says
// delivered after two attempts, and the metrics count one retry and one
// delivery.
func TestWebhookRetriedWithSameID(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{})
	proc := s.Procedure()
	rcv := startReceiver(t, func(_ webhooktest.Delivery, seen int) int {
		if seen == 0 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	wid := subscribe(t, s, proc, rcv, "dossier.created")
	id, _ := s.Dossier(proc)

	got := waitDeliveries(t, rcv, 20*time.Second, func(ds []webhooktest.Delivery) bool { return len(ds) >= 2 })
	if len(got) != 2 {
		t.Fatalf("%d deliveries, want 2: %s", len(got), describeDeliveries(got))
	}
	first, second := got[0], got[1]
	for _, d := range got {
		if d.Verified != nil {
			t.Errorf("delivery %s: the reference library says %v", d.ID, d.Verified)
		}
		if d.Type != "dossier.created" || d.DossierID() != id || d.Data["procedure_id"] != float64(proc) || d.Data["state"] != "en_construction" {
			t.Errorf("delivery %s", d.Body)
		}
	}
	if first.ID == "" || first.ID != second.ID || !strings.HasPrefix(first.ID, "msg_") {
		t.Errorf("webhook-id %q then %q, want the same msg_…", first.ID, second.ID)
	}
	if string(first.Body) != string(second.Body) {
		t.Errorf("body changed between attempts:\n%s\n%s", first.Body, second.Body)
	}

	var log []map[string]any
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if log = deliveriesOf(t, s, proc, wid); len(log) == 1 && log[0]["status"] == "delivered" {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(log) != 1 {
		t.Fatalf("delivery log %v", log)
	}
	d := log[0]
	if d["status"] != "delivered" || d["attempts"] != float64(2) || d["last_status_code"] != float64(200) ||
		d["event_id"] != first.ID || d["type"] != "dossier.created" || d["delivered_at"] == nil {
		t.Errorf("delivery log entry %v", d)
	}
	want := map[string]float64{"delivered": 1, "retry": 1, "failed": 0, "disabled": 0}
	if got := webhookOutcomes(t, s); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("aptflow_webhook_deliveries_total %v, want %v", got, want)
	}
}

// webhookOutcomes reads aptflow_webhook_deliveries_total by outcome.
func webhookOutcomes(t *testing.T, s *apptest.Stack) map[string]float64 {
	t.Helper()
	mfs, err := s.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "aptflow_webhook_deliveries_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" {
					out[l.GetValue()] = m.GetCounter().GetValue()
				}
			}
		}
	}
	return out
}
