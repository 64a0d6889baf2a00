package api

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/aptflow/aptflow/workflow"
)

// The webhooks of a procedure (DESIGN.md « Webhooks to upstream apps »):
// subscriptions, their delivery log, a manual retry.

func handleCreateWebhook(d Deps) http.Handler {
	return handle(d.Logger, func(w http.ResponseWriter, r *http.Request) error {
		id, err := pathID(r)
		if err != nil {
			return err
		}
		var in workflow.WebhookInput
		if err := decode(w, r, &in); err != nil {
			return err
		}
		wh, err := d.Service.CreateWebhook(r.Context(), id, in)
		if err != nil {
			return err
		}
		w.Header().Set("Location", webhookPath(id, wh.ID))
		return writeJSON(w, http.StatusCreated, wh)
	})
}

func handleListWebhooks(d Deps) http.Handler {
	return handle(d.Logger, func(w http.ResponseWriter, r *http.Request) error {
		id, err := pathID(r)
		if err != nil {
			return err
		}
		list, err := d.Service.ListWebhooks(r.Context(), id)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, map[string]any{"webhooks": list})
	})
}

func handleDeleteWebhook(d Deps) http.Handler {
	return handle(d.Logger, func(w http.ResponseWriter, r *http.Request) error {
		id, wid, err := webhookIDs(r)
		if err != nil {
			return err
		}
		if err := d.Service.DeleteWebhook(r.Context(), id, wid); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}

func handleRotateWebhookSecret(d Deps) http.Handler {
	return handle(d.Logger, func(w http.ResponseWriter, r *http.Request) error {
		id, wid, err := webhookIDs(r)
		if err != nil {
			return err
		}
		wh, err := d.Service.RotateWebhookSecret(r.Context(), id, wid)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, wh)
	})
}

func handleListWebhookDeliveries(d Deps) http.Handler {
	return handle(d.Logger, func(w http.ResponseWriter, r *http.Request) error {
		id, wid, err := webhookIDs(r)
		if err != nil {
			return err
		}
		q := r.URL.Query()
		f := workflow.WebhookDeliveryFilter{Status: q.Get("status")}
		var fields []workflow.FieldError
		if f.AfterID, f.Limit, fields = pageParams(q, fields); len(fields) > 0 {
			return &workflow.Error{Code: workflow.EInvalid, Message: "paramètres invalides", Fields: fields}
		}
		list, err := d.Service.ListWebhookDeliveries(r.Context(), id, wid, f)
		if err != nil {
			return err
		}
		resp := map[string]any{"deliveries": list}
		// A full page may have a next one: tell the client where it starts.
		if len(list) > 0 && len(list) == f.PageSize() {
			resp["next_after"] = list[len(list)-1].ID
		}
		return writeJSON(w, http.StatusOK, resp)
	})
}

func handleRetryWebhookDelivery(d Deps) http.Handler {
	return handle(d.Logger, func(w http.ResponseWriter, r *http.Request) error {
		id, wid, err := webhookIDs(r)
		if err != nil {
			return err
		}
		did, err := strconv.ParseInt(r.PathValue("did"), 10, 64)
		if err != nil || did <= 0 {
			return workflow.Errorf(workflow.ENotFound, "livraison inconnue")
		}
		del, err := d.Service.RetryWebhookDelivery(r.Context(), id, wid, did)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusAccepted, del)
	})
}

// webhookIDs parses the {id} (procedure) and {wid} path values; a
// malformed one is a 404, like an unknown one.
func webhookIDs(r *http.Request) (procedureID, webhookID int64, err error) {
	if procedureID, err = pathID(r); err != nil {
		return 0, 0, err
	}
	webhookID, err = strconv.ParseInt(r.PathValue("wid"), 10, 64)
	if err != nil || webhookID <= 0 {
		return 0, 0, workflow.Errorf(workflow.ENotFound, "webhook inconnu")
	}
	return procedureID, webhookID, nil
}

func webhookPath(procedureID, webhookID int64) string {
	return "/v1/procedures/" + strconv.FormatInt(procedureID, 10) + "/webhooks/" + strconv.FormatInt(webhookID, 10)
}

// withoutSecret returns a JSON object response with its "secret" member
// set to null, and any other body as it is. The idempotency log stores
// responses in clear: a webhook's secret, shown once, must not be there
// (a dump of the database alone must not let anyone sign). A replayed
// creation or rotation says "secret": null; rotate again for a new one.
func withoutSecret(body []byte) []byte {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return body
	}
	if s, ok := m["secret"]; !ok || string(s) == "null" {
		return body
	}
	m["secret"] = json.RawMessage("null")
	out, err := json.Marshal(m)
	if err != nil {
		return body
	}
	return append(out, '\n')
}
