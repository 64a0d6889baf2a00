// Command webhook-receiver is the README's example: an upstream app's
// endpoint that verifies aptflow's webhooks with the Standard Webhooks
// reference library.
package main

import (
	"io"
	"log"
	"net/http"
	"os"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

func main() {
	// The secret aptflow showed once (whsec_…), when subscribing.
	wh, err := standardwebhooks.NewWebhook(os.Getenv("APTFLOW_WEBHOOK_SECRET"))
	if err != nil {
		log.Fatal(err)
	}
	http.Handle("POST /hooks/aptflow", receive(wh))
	log.Fatal(http.ListenAndServe("127.0.0.1:8090", nil)) // behind your HTTPS proxy
}

func receive(wh *standardwebhooks.Webhook) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		// The signature of webhook-id.webhook-timestamp.body, and a
		// timestamp within 5 minutes (no replay of an old delivery).
		if err != nil || wh.Verify(body, r.Header) != nil {
			http.Error(w, "invalid signature", http.StatusUnauthorized)
			return
		}
		// A retry carries the same webhook-id: act on each id once.
		log.Printf("%s %s", r.Header.Get("webhook-id"), body)
		w.WriteHeader(http.StatusNoContent) // any 2xx: delivered
	})
}
