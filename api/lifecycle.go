package api

import (
	"net/http"
	"time"

	"github.com/aptflow/aptflow/workflow"
)

// handleConservation extends a dossier's conservation (RGPD): an
// instructeur adds months before its expiry.
func handleConservation(d Deps) http.Handler {
	return handle(d.Logger, func(w http.ResponseWriter, r *http.Request) error {
		id, err := pathID(r)
		if err != nil {
			return err
		}
		var in workflow.ConservationInput
		if err := decode(w, r, &in); err != nil {
			return err
		}
		dos, err := d.Service.ExtendConservation(r.Context(), id, in)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, dos)
	})
}

// handleDeletedDossiers lists a procedure's tombstones, oldest deletion
// first, for upstream apps to delete their copies of purged dossiers:
// ?since= (RFC 3339, included), then ?after= (an id, with since: the
// keyset of the previous page, whose next_since and next_after a full page
// gives) and ?limit=.
func handleDeletedDossiers(d Deps) http.Handler {
	return handle(d.Logger, func(w http.ResponseWriter, r *http.Request) error {
		id, err := pathID(r)
		if err != nil {
			return err
		}
		q := r.URL.Query()
		var f workflow.DeletedFilter
		var fields []workflow.FieldError
		if s := q.Get("since"); s != "" {
			if f.Since, err = time.Parse(time.RFC3339Nano, s); err != nil {
				fields = append(fields, workflow.FieldError{Field: "since", Code: "invalid_type", Detail: "date RFC 3339 attendue (2026-11-30T03:00:00+01:00)"})
			}
		}
		f.AfterID, f.Limit, fields = pageParams(q, fields)
		if len(fields) > 0 {
			return &workflow.Error{Code: workflow.EInvalid, Message: "paramètres invalides", Fields: fields}
		}
		list, err := d.Service.ListDeleted(r.Context(), id, f)
		if err != nil {
			return err
		}
		resp := map[string]any{"dossiers_supprimes": list}
		if len(list) > 0 && len(list) == f.PageSize() {
			last := list[len(list)-1]
			resp["next_since"], resp["next_after"] = last.DeletedAt, last.ID
		}
		return writeJSON(w, http.StatusOK, resp)
	})
}
