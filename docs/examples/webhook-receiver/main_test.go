package main

import (
	"bytes"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/aptflow/aptflow/internal/apptest"
)

// TestReceiver: the README's receiver takes aptflow's deliveries (they
// end delivered) and refuses a forged one.
func TestReceiver(t *testing.T) {
	s := apptest.Start(t, apptest.Options{})
	var handler atomic.Pointer[http.Handler]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*handler.Load()).ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	var logs bytes.Buffer
	log.SetOutput(&logs)
	t.Cleanup(func() { log.SetOutput(os.Stderr) })

	proc := s.Procedure()
	hook := s.Must(201, "POST", fmt.Sprintf("/v1/procedures/%d/webhooks", proc), map[string]any{"url": srv.URL + "/hooks/aptflow"})
	wh, err := standardwebhooks.NewWebhook(hook["secret"].(string))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /hooks/aptflow", receive(wh))
	var h http.Handler = mux
	handler.Store(&h)

	id, _ := s.Dossier(proc)
	deadline := time.Now().Add(20 * time.Second)
	for {
		var status string
		if err := s.Pool.QueryRow(t.Context(), `SELECT status FROM webhook_deliveries`).Scan(&status); err != nil {
			t.Fatal(err)
		}
		if status == "delivered" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery %s", status)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), fmt.Sprintf(`"dossier_id":%d`, id)) {
		t.Errorf("the receiver logged %q", logs.String())
	}

	forged, _ := http.NewRequest("POST", srv.URL+"/hooks/aptflow", strings.NewReader(`{"type":"dossier.deleted"}`))
	forged.Header.Set("webhook-id", "msg_forged")
	forged.Header.Set("webhook-timestamp", fmt.Sprint(time.Now().Unix()))
	forged.Header.Set("webhook-signature", "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
	resp, err := http.DefaultClient.Do(forged)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("forged delivery: %d", resp.StatusCode)
	}
}

// TestREADME: the README shows this program as it is.
func TestREADME(t *testing.T) {
	readme, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	// The README's copy starts at the import block.
	code := string(src[bytes.Index(src, []byte("import (")):])
	if !strings.Contains(string(readme), code) {
		t.Errorf("README.md does not show docs/examples/webhook-receiver/main.go from its imports on:\n%s", code)
	}
}
