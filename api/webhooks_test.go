package api_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aptflow/aptflow/internal/apptest"
	"github.com/aptflow/aptflow/internal/webhooktest"
	"github.com/aptflow/aptflow/workflow"
)

// waitFor polls cond until it holds.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s", what, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestWebhookSubscriptions: a subscription's life through the API. Its
// secret is shown at creation and rotation only, never in a list, nor in
// clear in the database (idempotent replays included); during a rotation
// deliveries carry both signatures; the delivery log pages and filters; a
// manual retry replays a delivered delivery with its webhook-id; deleting
// stops the deliveries; another procedure's ids are 404.
func TestWebhookSubscriptions(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{})
	ctx := t.Context()
	proc := s.Procedure()
	other := s.Procedure()
	rcv := webhooktest.Start(nil)
	t.Cleanup(rcv.Close)
	base := fmt.Sprintf("/v1/procedures/%d/webhooks", proc)

	r := s.Do("POST", base, map[string]any{"url": rcv.URL, "events": []string{"dossier.created", "dossier.created"}}, "Idempotency-Key", "creation-1")
	if r.StatusCode != 201 {
		t.Fatalf("create: %d %s", r.StatusCode, r.Body)
	}
	created := r.JSON(t)
	wid := int64(created["id"].(float64))
	secret, _ := created["secret"].(string)
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if !strings.HasPrefix(secret, "whsec_") || err != nil || len(key) != 32 {
		t.Fatalf("secret %q: %v", secret, err)
	}
	if r.Header.Get("Location") != fmt.Sprintf("%s/%d", base, wid) || created["status"] != "active" ||
		fmt.Sprint(created["events"]) != "[dossier.created]" || created["url"] != rcv.URL {
		t.Errorf("created %v, Location %q", created, r.Header.Get("Location"))
	}
	if err := rcv.SetSecret(secret); err != nil {
		t.Fatal(err)
	}

	t.Run("SecretShownOnce", func(t *testing.T) {
		replay := s.Do("POST", base, map[string]any{"url": rcv.URL, "events": []string{"dossier.created", "dossier.created"}}, "Idempotency-Key", "creation-1")
		if replay.StatusCode != 201 || replay.Header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("replay: %d %s", replay.StatusCode, replay.Body)
		}
		if got := replay.JSON(t); got["secret"] != nil || got["id"] != created["id"] {
			t.Errorf("replay %v: want the same subscription without its secret", got)
		}
		list := s.Must(200, "GET", base, nil)["webhooks"].([]any)
		if len(list) != 1 || list[0].(map[string]any)["secret"] != nil {
			t.Errorf("list %v", list)
		}
		// Nowhere in the database in clear: not in the subscription (it
		// is sealed), not in the stored idempotent response.
		var dump []byte
		if err := s.Pool.QueryRow(ctx, `SELECT convert_to(
			(SELECT string_agg(t::text, '') FROM webhook_subscriptions t) ||
			(SELECT string_agg(t::text, '') FROM idempotency_keys t), 'UTF8')`).Scan(&dump); err != nil {
			t.Fatal(err)
		}
		for _, form := range [][]byte{[]byte(secret), []byte(strings.TrimPrefix(secret, "whsec_")), key,
			[]byte(fmt.Sprintf("%x", key))} {
			if bytes.Contains(dump, form) {
				t.Errorf("the database holds the secret in clear (%q)", form)
			}
		}
	})

	t.Run("Rotation", func(t *testing.T) {
		rot := s.Must(200, "POST", fmt.Sprintf("%s/%d/secret/rotate", base, wid), nil)
		newSecret, _ := rot["secret"].(string)
		if !strings.HasPrefix(newSecret, "whsec_") || newSecret == secret || rot["previous_secret_expires_at"] == nil {
			t.Fatalf("rotate %v", rot)
		}
		s.Dossier(proc)
		got := waitDeliveries(t, rcv, 1)
		d := got[len(got)-1]
		if sigs := strings.Fields(d.Signature); len(sigs) != 2 {
			t.Errorf("signature %q: want the new and the previous one", d.Signature)
		}
		for name, secret := range map[string]string{"New": newSecret, "Previous": secret} {
			if err := verifyWith(secret, d); err != nil {
				t.Errorf("%s secret: %v", name, err)
			}
		}
		if err := rcv.SetSecret(newSecret); err != nil {
			t.Fatal(err)
		}
	})

	var first map[string]any
	t.Run("DeliveryLog", func(t *testing.T) {
		for range 2 {
			s.Dossier(proc)
		}
		waitDeliveries(t, rcv, 3)
		var log []any
		waitFor(t, 20*time.Second, "three delivered", func() bool {
			log = s.Must(200, "GET", fmt.Sprintf("%s/%d/deliveries?status=delivered", base, wid), nil)["deliveries"].([]any)
			return len(log) == 3
		})
		first = log[0].(map[string]any)
		page := s.Must(200, "GET", fmt.Sprintf("%s/%d/deliveries?limit=2", base, wid), nil)
		if len(page["deliveries"].([]any)) != 2 || page["next_after"] == nil {
			t.Fatalf("page %v", page)
		}
		rest := s.Must(200, "GET", fmt.Sprintf("%s/%d/deliveries?limit=2&after=%v", base, wid, page["next_after"]), nil)
		if len(rest["deliveries"].([]any)) != 1 || rest["next_after"] != nil {
			t.Errorf("second page %v", rest)
		}
		if n := len(s.Must(200, "GET", fmt.Sprintf("%s/%d/deliveries?status=failed", base, wid), nil)["deliveries"].([]any)); n != 0 {
			t.Errorf("%d failed", n)
		}
		r := s.Do("GET", fmt.Sprintf("%s/%d/deliveries?status=perdu&limit=0&after=x", base, wid), nil)
		if r.StatusCode != 422 || len(r.JSON(t)["errors"].([]any)) != 2 {
			t.Errorf("bad query: %d %s", r.StatusCode, r.Body)
		}
	})

	t.Run("ManualRetry", func(t *testing.T) {
		n := rcv.Count()
		did := int64(first["id"].(float64))
		d := s.Must(202, "POST", fmt.Sprintf("%s/%d/deliveries/%d/retry", base, wid, did), nil)
		if d["status"] != "pending" || d["event_id"] != first["event_id"] {
			t.Errorf("retried %v", d)
		}
		time.Sleep(3 * time.Second)
		rows, _ := s.Pool.Query(ctx, `SELECT id, kind, state, attempt, args::text, errors::text FROM river_job ORDER BY id`)
		for rows.Next() {
			v, _ := rows.Values()
			t.Log(v)
		}
		rows, _ = s.Pool.Query(ctx, `SELECT * FROM webhook_deliveries ORDER BY id`)
		for rows.Next() {
			v, _ := rows.Values()
			t.Log(v)
		}
		got := waitDeliveries(t, rcv, n+1)
		if again := got[len(got)-1]; again.ID != first["event_id"] || again.Verified != nil {
			t.Errorf("replayed %s (verified: %v), want %s", again.ID, again.Verified, first["event_id"])
		}
		waitFor(t, 20*time.Second, "delivered again", func() bool {
			log := s.Must(200, "GET", fmt.Sprintf("%s/%d/deliveries", base, wid), nil)["deliveries"].([]any)
			d := log[0].(map[string]any)
			return d["status"] == "delivered" && d["attempts"] == float64(2)
		})
	})

	t.Run("NotFound", func(t *testing.T) {
		for _, path := range []string{
			fmt.Sprintf("/v1/procedures/%d/webhooks/%d/deliveries", other, wid),
			"/v1/procedures/999999/webhooks",
			fmt.Sprintf("%s/999999/deliveries", base),
			fmt.Sprintf("%s/abc/deliveries", base),
		} {
			if r := s.Do("GET", path, nil); r.StatusCode != 404 || r.JSON(t)["code"] != "not_found" {
				t.Errorf("GET %s: %d %s", path, r.StatusCode, r.Body)
			}
		}
		for _, path := range []string{
			fmt.Sprintf("/v1/procedures/%d/webhooks/%d/deliveries/%v/retry", other, wid, first["id"]),
			fmt.Sprintf("%s/%d/deliveries/999999/retry", base, wid),
			fmt.Sprintf("/v1/procedures/%d/webhooks/%d/secret/rotate", other, wid),
		} {
			if r := s.Do("POST", path, nil); r.StatusCode != 404 {
				t.Errorf("POST %s: %d %s", path, r.StatusCode, r.Body)
			}
		}
		if r := s.Do("DELETE", fmt.Sprintf("/v1/procedures/%d/webhooks/%d", other, wid), nil); r.StatusCode != 404 {
			t.Errorf("DELETE from another procedure: %d", r.StatusCode)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		s.Must(204, "DELETE", fmt.Sprintf("%s/%d", base, wid), nil)
		n := rcv.Count()
		id, _ := s.Dossier(proc)
		var events int
		if err := s.Pool.QueryRow(ctx, `SELECT count(*) FROM webhook_events WHERE data->>'dossier_id' = $1`, fmt.Sprint(id)).Scan(&events); err != nil {
			t.Fatal(err)
		}
		if events != 0 {
			t.Errorf("%d events written for a deleted subscription", events)
		}
		if l := s.Must(200, "GET", base, nil)["webhooks"].([]any); len(l) != 0 {
			t.Errorf("list after delete %v", l)
		}
		if r := s.Do("DELETE", fmt.Sprintf("%s/%d", base, wid), nil); r.StatusCode != 404 {
			t.Errorf("second delete: %d", r.StatusCode)
		}
		if rcv.Count() != n {
			t.Errorf("%d requests after the delete", rcv.Count()-n)
		}
	})
}

// waitDeliveries waits until the receiver holds at least n deliveries.
func waitDeliveries(t *testing.T, r *webhooktest.Receiver, n int) []webhooktest.Delivery {
	t.Helper()
	got, err := r.Wait(20*time.Second, func(ds []webhooktest.Delivery) bool { return len(ds) >= n })
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// verifyWith checks a delivery against one secret with the reference
// library.
func verifyWith(secret string, d webhooktest.Delivery) error {
	h := http.Header{}
	h.Set("webhook-id", d.ID)
	h.Set("webhook-timestamp", d.Timestamp)
	h.Set("webhook-signature", d.Signature)
	return webhooktest.Verify(secret, d.Body, h)
}

// TestWebhooksNotConfigured: without WEBHOOK_SECRET_KEY no subscription
// can be made (503 webhooks_not_configured): its secret could not be kept.
func TestWebhooksNotConfigured(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{NoWorkers: true, NoWebhookSecrets: true})
	r := s.Do("POST", fmt.Sprintf("/v1/procedures/%d/webhooks", s.Procedure()), map[string]any{"url": "https://93.184.216.34/"})
	if r.StatusCode != http.StatusServiceUnavailable || r.JSON(t)["code"] != workflow.EWebhooksNotConfigured {
		t.Fatalf("%d %s", r.StatusCode, r.Body)
	}
}
