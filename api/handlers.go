package api

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"

	"github.com/aptflow/aptflow/workflow"
)

func handleCreateProcedure(d Deps) http.Handler {
	return handle(d.Logger, func(w http.ResponseWriter, r *http.Request) error {
		var in workflow.ProcedureInput
		if err := decode(w, r, &in); err != nil {
			return err
		}
		p, err := d.Service.CreateProcedure(r.Context(), in)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusCreated, p)
	})
}

func handleAddInstructeur(d Deps) http.Handler {
	return handle(d.Logger, func(w http.ResponseWriter, r *http.Request) error {
		id, err := pathID(r)
		if err != nil {
			return err
		}
		var in struct {
			Email string `json:"email"`
			Nom   string `json:"nom"`
		}
		if err := decode(w, r, &in); err != nil {
			return err
		}
		inst, added, err := d.Service.AddInstructeur(r.Context(), id, in.Email, in.Nom)
		if err != nil {
			return err
		}
		status := http.StatusOK
		if added {
			status = http.StatusCreated
		}
		return writeJSON(w, status, map[string]any{"procedure_id": id, "instructeur": inst})
	})
}

func handleCreateDossier(d Deps) http.Handler {
	return handle(d.Logger, func(w http.ResponseWriter, r *http.Request) error {
		var in workflow.DossierInput
		if err := decode(w, r, &in); err != nil {
			return err
		}
		dos, err := d.Service.CreateDossier(r.Context(), in)
		if err != nil {
			return err
		}
		w.Header().Set("Location", "/v1/dossiers/"+strconv.FormatInt(dos.ID, 10))
		return writeJSON(w, http.StatusCreated, dos)
	})
}

func handleGetDossier(d Deps) http.Handler {
	return handle(d.Logger, func(w http.ResponseWriter, r *http.Request) error {
		id, err := pathID(r)
		if err != nil {
			return err
		}
		dos, err := d.Service.GetDossier(r.Context(), id)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, dos)
	})
}

func handlePatchDossier(d Deps) http.Handler {
	return handle(d.Logger, func(w http.ResponseWriter, r *http.Request) error {
		id, err := pathID(r)
		if err != nil {
			return err
		}
		var in struct {
			Demandeur json.RawMessage `json:"demandeur"`
		}
		if err := decode(w, r, &in); err != nil {
			return err
		}
		if in.Demandeur == nil {
			return &workflow.Error{Code: workflow.EInvalid, Message: "rien à modifier",
				Fields: []workflow.FieldError{{Field: "demandeur", Code: "required", Detail: "le demandeur (partiel) est obligatoire"}}}
		}
		dos, err := d.Service.UpdateDemandeur(r.Context(), id, in.Demandeur)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, dos)
	})
}

func handleEvent(d Deps) http.Handler {
	return handle(d.Logger, func(w http.ResponseWriter, r *http.Request) error {
		id, err := pathID(r)
		if err != nil {
			return err
		}
		var in struct {
			Event               workflow.Event `json:"event"`
			Instructeur         string         `json:"instructeur"`
			Motivation          string         `json:"motivation"`
			DisableNotification bool           `json:"disable_notification"`
		}
		if err := decode(w, r, &in); err != nil {
			return err
		}
		dos, err := d.Service.Transition(r.Context(), id, workflow.Command{
			Event: in.Event, Instructeur: in.Instructeur, Motivation: in.Motivation, DisableNotification: in.DisableNotification,
		})
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, dos)
	})
}

func handleFollow(on bool) func(Deps) http.Handler {
	return func(d Deps) http.Handler { return handleFollowing(d, on) }
}

func handleFollowing(d Deps, on bool) http.Handler {
	return handle(d.Logger, func(w http.ResponseWriter, r *http.Request) error {
		id, err := pathID(r)
		if err != nil {
			return err
		}
		email := r.PathValue("email")
		if on {
			err = d.Service.Follow(r.Context(), id, email)
		} else {
			err = d.Service.Unfollow(r.Context(), id, email)
		}
		if err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}

func handleMessage(d Deps) http.Handler {
	return handle(d.Logger, func(w http.ResponseWriter, r *http.Request) error {
		id, err := pathID(r)
		if err != nil {
			return err
		}
		var in struct {
			From string `json:"from"`
			Body string `json:"body"`
		}
		if err := decode(w, r, &in); err != nil {
			return err
		}
		// The applicant's side writes as the applicant, the back office as
		// an instructeur.
		need := ScopeInstruction
		if in.From == workflow.FromUsager {
			need = ScopeDepot
		}
		if err := requireScope(r, need); err != nil {
			return err
		}
		m, err := d.Service.PostMessage(r.Context(), id, in.From, in.Body)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusCreated, m)
	})
}

func handleAvis(d Deps) http.Handler {
	return handle(d.Logger, func(w http.ResponseWriter, r *http.Request) error {
		id, err := pathID(r)
		if err != nil {
			return err
		}
		var in struct {
			Expert string `json:"expert"`
			Body   string `json:"body"`
		}
		if err := decode(w, r, &in); err != nil {
			return err
		}
		m, err := d.Service.PostAvis(r.Context(), id, in.Expert, in.Body)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusCreated, m)
	})
}

func handleListDossiers(d Deps) http.Handler {
	return handle(d.Logger, func(w http.ResponseWriter, r *http.Request) error {
		q := r.URL.Query()
		f := workflow.ListFilter{Tab: q.Get("tab")}
		var fields []workflow.FieldError
		f.AfterID, f.Limit, fields = pageParams(q, fields)
		if len(fields) > 0 {
			return &workflow.Error{Code: workflow.EInvalid, Message: "paramètres invalides", Fields: fields}
		}
		list, err := d.Service.ListForInstructeur(r.Context(), r.PathValue("email"), f)
		if err != nil {
			return err
		}
		if list == nil {
			list = []workflow.DossierSummary{}
		}
		resp := map[string]any{"dossiers": list}
		// A full page may have a next one: tell the client where it starts.
		if len(list) > 0 && len(list) == f.PageSize() {
			resp["next_after"] = list[len(list)-1].ID
		}
		return writeJSON(w, http.StatusOK, resp)
	})
}

// pageParams reads the keyset pagination of a list, ?after= (an id) and
// ?limit=, adding one entry to fields per bad parameter.
func pageParams(q url.Values, fields []workflow.FieldError) (after int64, limit int, _ []workflow.FieldError) {
	if s := q.Get("after"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			fields = append(fields, workflow.FieldError{Field: "after", Code: "invalid_type", Detail: "entier positif attendu"})
		}
		after = n
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			fields = append(fields, workflow.FieldError{Field: "limit", Code: "invalid_type", Detail: "entier positif attendu"})
		}
		limit = n
	}
	return after, limit, fields
}

func handlePreferences(d Deps) http.Handler {
	return handle(d.Logger, func(w http.ResponseWriter, r *http.Request) error {
		var in struct {
			Notifications string `json:"notifications"`
		}
		if err := decode(w, r, &in); err != nil {
			return err
		}
		inst, err := d.Service.SetPreferences(r.Context(), r.PathValue("email"), in.Notifications)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, inst)
	})
}

func handleHealthz(Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}

func handleReadyz(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.Ready != nil {
			if err := d.Ready(r); err != nil {
				_ = writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": err.Error()})
				return
			}
		}
		_ = writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
}
