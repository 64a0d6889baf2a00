package api

import (
	_ "embed"
	"html/template"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aptflow/aptflow/templates"
	"github.com/aptflow/aptflow/workflow"
)

func handleAttestationPDF(d Deps) http.Handler {
	return handle(d.Logger, func(w http.ResponseWriter, r *http.Request) error {
		id, err := pathID(r)
		if err != nil {
			return err
		}
		pdf, sum, err := d.Service.AttestationPDF(r.Context(), id)
		if err != nil {
			return err
		}
		w.Header().Set("Content-Type", "application/pdf")
		w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": templates.AttestationFilename(id)}))
		w.Header().Set("Content-Length", strconv.Itoa(len(pdf)))
		w.Header().Set("ETag", `"`+sum+`"`)
		w.Header().Set("Cache-Control", "private, no-store")
		_, err = w.Write(pdf)
		return err
	})
}

//go:embed verify.html
var verifyHTML string

var verifyPage = template.Must(template.New("verify").Funcs(template.FuncMap{
	// date: the day of an instant (the decision) in Paris.
	"date": func(t time.Time) string { return templates.DateFR(workflow.DateOf(t, workflow.Paris())) },
	// day: a calendar date (the period).
	"day": templates.DateFR,
}).Parse(verifyHTML))

// handleVerify is the public page where an employer checks an attestation:
// HTML for a person, JSON for a machine (Accept: application/json).
func handleVerify(d Deps) http.Handler {
	return handle(d.Logger, func(w http.ResponseWriter, r *http.Request) error {
		wantsJSON := strings.Contains(r.Header.Get("Accept"), "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Robots-Tag", "noindex")
		v, err := d.Service.VerifyAttestation(r.Context(), r.PathValue("code"))
		if err != nil && workflow.ErrorCode(err) != workflow.ENotFound {
			return err
		}
		if wantsJSON {
			if err != nil {
				return err
			}
			return writeJSON(w, http.StatusOK, v)
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		status := http.StatusOK
		if v == nil {
			status = http.StatusNotFound
		}
		w.WriteHeader(status)
		return verifyPage.Execute(w, v)
	})
}
