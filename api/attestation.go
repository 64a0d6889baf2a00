package api

import (
	_ "embed"
	"errors"
	"html/template"
	"io"
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
	// dayAfter: the day after a calendar date, the first one an expired
	// attestation no longer covers.
	"dayAfter": func(d workflow.Date) string { return templates.DateFR(d.AddDays(1)) },
	"hours":    templates.HoursFR,
	"siret":    templates.SiretFR,
}).Parse(verifyHTML))

// verifyView is what the verification page shows: the attestation (nil
// for an unknown code), and after an upload whether the file matches.
type verifyView struct {
	V        *workflow.Verification
	Code     string // normalised: the form posts back to it
	Compared bool
	Match    bool
	Problem  string // why an upload could not be compared
}

// MaxAttestationUpload is the largest PDF the comparison takes; an
// attestation is about 40 kB.
const MaxAttestationUpload = 5 << 20

// handleVerify is the public page where an employer checks an attestation:
// HTML for a person, JSON for a machine (Accept: application/json).
func handleVerify(d Deps) http.Handler { return serveVerification(d, false) }

// handleCompareAttestation is the page again after an upload (POST): it
// also says whether the uploaded PDF is, byte for byte, the one issued.
func handleCompareAttestation(d Deps) http.Handler { return serveVerification(d, true) }

// serveVerification serves the verification page, and with compare the
// comparison of an uploaded file.
func serveVerification(d Deps, compare bool) http.Handler {
	return handle(d.Logger, func(w http.ResponseWriter, r *http.Request) error {
		wantsJSON := strings.Contains(r.Header.Get("Accept"), "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Robots-Tag", "noindex")
		code := r.PathValue("code")
		v, err := d.Service.VerifyAttestation(r.Context(), code)
		if err != nil && workflow.ErrorCode(err) != workflow.ENotFound {
			return err
		}
		view := verifyView{V: v, Code: workflow.NormalizeCode(code)}
		status := http.StatusOK
		if v == nil {
			status = http.StatusNotFound
		}
		if compare && v != nil {
			pdf, uerr := readAttestationUpload(w, r)
			if uerr == nil {
				view.Compared = true
				if view.Match, uerr = d.Service.CompareAttestation(r.Context(), code, pdf); uerr != nil {
					return uerr
				}
			} else if wantsJSON {
				return uerr
			} else {
				var he *httpError
				if !errors.As(uerr, &he) {
					return uerr
				}
				status, view.Problem = statusOf(he.code), he.detail
			}
		}
		if wantsJSON {
			switch {
			case err != nil:
				return err
			case compare:
				return writeJSON(w, http.StatusOK, map[string]bool{"match": view.Match})
			default:
				return writeJSON(w, http.StatusOK, v)
			}
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'")
		w.WriteHeader(status)
		return verifyPage.Execute(w, view)
	})
}

// readAttestationUpload reads the PDF of a comparison: the raw body
// (application/pdf) or the field "pdf" of a multipart form, at most
// MaxAttestationUpload bytes.
func readAttestationUpload(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	tooLarge := errf(codeBodyTooLarge, "le fichier dépasse 5 Mo : ce n'est pas une attestation")
	unreadable := &httpError{code: workflow.EInvalid, detail: "envoi illisible",
		fields: []workflow.FieldError{{Field: "pdf", Code: "unreadable", Detail: "le formulaire envoyé est illisible ou interrompu"}}}
	required := &httpError{code: workflow.EInvalid, detail: "aucun fichier PDF reçu",
		fields: []workflow.FieldError{{Field: "pdf", Code: "required", Detail: "joignez le fichier PDF de l'attestation"}}}
	var body io.Reader
	switch mt {
	case "application/pdf":
		body = http.MaxBytesReader(w, r.Body, MaxAttestationUpload+1)
	case "multipart/form-data":
		// The form's own bytes (boundaries, headers) come on top of the file.
		r.Body = http.MaxBytesReader(w, r.Body, MaxAttestationUpload+64<<10)
		mr, err := r.MultipartReader()
		if err != nil {
			return nil, unreadable
		}
		for {
			part, err := mr.NextPart()
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, tooLarge
			} else if err == io.EOF {
				return nil, required
			} else if err != nil {
				return nil, unreadable
			}
			if part.FormName() == "pdf" {
				body = part
				break
			}
		}
	default:
		return nil, errf(codeUnsupportedMedia, "envoyez le PDF en application/pdf ou dans le champ « pdf » d'un formulaire multipart/form-data")
	}
	pdf, err := io.ReadAll(io.LimitReader(body, MaxAttestationUpload+1))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe) || len(pdf) > MaxAttestationUpload:
		return nil, tooLarge
	case err != nil:
		return nil, unreadable
	case len(pdf) == 0:
		return nil, required
	}
	return pdf, nil
}
