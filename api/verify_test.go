package api_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"mime/multipart"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aptflow/aptflow/internal/apptest"
	"github.com/aptflow/aptflow/internal/devcert"
	"github.com/aptflow/aptflow/templates/attestation"
)

// signedStack starts a stack whose attestations are signed with a fresh
// development certificate, on a clock the test sets (clock.Store).
func signedStack(t *testing.T) (*apptest.Stack, *atomic.Pointer[time.Time]) {
	t.Helper()
	certPEM, keyPEM, err := devcert.Generate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	signer, err := attestation.NewSigner(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	var clock atomic.Pointer[time.Time]
	start := time.Date(2026, time.November, 2, 10, 0, 0, 0, time.UTC)
	clock.Store(&start)
	s := apptest.Start(t, apptest.Options{Signer: signer, Now: func() time.Time { return *clock.Load() }})
	return s, &clock
}

// acceptedWithAttestation accepts a dossier of a procedure with a
// signataire and waits for its attestation; it returns the dossier, the
// attestation reference and the code as printed on the PDF.
func acceptedWithAttestation(t *testing.T, s *apptest.Stack) (id int64, att map[string]any, code string) {
	t.Helper()
	p := s.Must(201, "POST", "/v1/procedures", map[string]any{
		"libelle":          "Autorisation provisoire de travail (APT) pour les étudiants",
		"service":          map[string]any{"nom": "Préfecture du Rhône", "adresse": "18 rue de Bonnel\n69003 Lyon"},
		"stale_after_days": 30,
		"heures_hebdo_max": 20,
		"signataire":       map[string]any{"nom": "Claire Martin", "qualite": "Pour le préfet et par délégation, la cheffe du bureau des étrangers"},
	})
	if sig, _ := p["signataire"].(map[string]any); sig["nom"] != "Claire Martin" {
		t.Fatalf("procedure %v", p)
	}
	id = s.Accepted(int64(p["id"].(float64)), "Pièces conformes.")
	att = s.WaitAttestation(id, 30*time.Second)
	u := att["verification_url"].(string)
	code = u[strings.LastIndex(u, "/")+1:]
	return id, att, code
}

// printed writes code as the PDF prints it: upper case, groups of four.
func printed(code string) string {
	var b strings.Builder
	for i := 0; i < len(code); i += 4 {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strings.ToUpper(code[i:min(i+4, len(code))]))
	}
	return b.String()
}

// TestVerification: a signed attestation whose signature pdfsig accepts,
// whose sha256 (API, JSON, page) is the signed file's; its status at the
// boundaries of its period on the service's clock; the code as typed from
// paper; the comparison of an uploaded file.
func TestVerification(t *testing.T) {
	t.Parallel()
	pdfsig := apptest.Tool(t, "pdfsig", "poppler-utils")
	pdftotext := apptest.Tool(t, "pdftotext", "poppler-utils")
	s, clock := signedStack(t)
	id, att, code := acceptedWithAttestation(t, s)
	pdf := s.Must200Bytes(fmt.Sprintf("/v1/dossiers/%d/attestation.pdf", id))
	sum := sha256.Sum256(pdf)
	sha := hex.EncodeToString(sum[:])

	t.Run("Signed", func(t *testing.T) {
		if att["sha256"] != sha {
			t.Errorf("API sha256 %v, the file's is %s", att["sha256"], sha)
		}
		file := filepath.Join(t.TempDir(), "attestation.pdf")
		if err := os.WriteFile(file, pdf, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(pdfsig, "-nocert", file).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Signature is Valid.") || !strings.Contains(string(out), "Total document signed") {
			t.Fatalf("pdfsig: %v\n%s", err, out)
		}
		text, err := exec.Command(pdftotext, "-enc", "UTF-8", file, "-").Output()
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"Claire Martin", "Pour le préfet et par délégation", printed(code), "Signé électroniquement"} {
			if !strings.Contains(string(text), want) {
				t.Errorf("the PDF lacks %q:\n%s", want, text)
			}
		}
		if strings.Contains(string(text), "@") {
			t.Errorf("the PDF prints an e-mail address:\n%s", text)
		}
	})

	t.Run("JSON", func(t *testing.T) {
		v := s.Must(200, "GET", "/attestations/"+code, nil, "Accept", "application/json")
		want := map[string]any{
			"status": "pas_encore_valide", "valid": false, "dossier_id": float64(id), "nom": "Dupré", "prenom": "Élodie",
			"date_debut": "2026-12-01", "date_fin": "2027-06-30", "titre_sejour_expire_le": "2027-09-30",
			"employeur": map[string]any{"raison_sociale": "Boulangerie Œuvre & Fils", "siret": "73282932000074"},
			"emploi":    "vendeuse en boulangerie", "heures_hebdo": 17.5, "service": "Préfecture du Rhône",
			"signed": true, "sha256": sha,
		}
		for k, w := range want {
			if fmt.Sprint(v[k]) != fmt.Sprint(w) {
				t.Errorf("%s = %v, want %v", k, v[k], w)
			}
		}
		if _, ok := v["decided_at"].(string); !ok || len(v) != len(want)+1 {
			t.Errorf("fields %v", v)
		}
	})

	// The dossier's period: 2026-12-01 … 2027-06-30 (the permit runs to
	// 2027-09-30). Paris is UTC+1 in December, UTC+2 in June.
	for _, tc := range []struct {
		at, status string
		valid      bool
		words      string
	}{
		{"2026-11-30T22:59:59Z", "pas_encore_valide", false, "Pas encore valide : à partir du 1er décembre 2026"},
		{"2026-11-30T23:00:00Z", "valide", true, "Valide du 1er décembre 2026 au 30 juin 2027"},
		{"2027-06-30T21:59:59Z", "valide", true, "Valide du 1er décembre 2026 au 30 juin 2027"},
		{"2027-06-30T22:00:00Z", "expiree", false, "Expirée depuis le 1er juillet 2027"},
	} {
		t.Run("Status/"+tc.at, func(t *testing.T) {
			at, _ := time.Parse(time.RFC3339, tc.at)
			clock.Store(&at)
			v := s.Must(200, "GET", "/attestations/"+code, nil, "Accept", "application/json")
			if v["status"] != tc.status || v["valid"] != tc.valid {
				t.Errorf("status %v valid %v, want %s %v", v["status"], v["valid"], tc.status, tc.valid)
			}
			page := s.Do("GET", "/attestations/"+code, nil, "Accept", "text/html")
			if page.StatusCode != 200 || !strings.Contains(string(page.Body), tc.words) {
				t.Errorf("page %d lacks %q:\n%s", page.StatusCode, tc.words, page.Body)
			}
		})
	}

	t.Run("Page", func(t *testing.T) {
		body := string(s.Do("GET", "/attestations/"+code, nil).Body)
		for _, want := range []string{sha, "Préfecture du Rhône", "SIRET 732 829 320 00074", "17,5 h", "••••••5678",
			`enctype="multipart/form-data"`, "signature électronique"} {
			if !strings.Contains(body, want) {
				t.Errorf("page lacks %q", want)
			}
		}
		for _, never := range []string{"6912345678", "sha256sum", "n'a pas été retirée", "<script"} {
			if strings.Contains(body, never) {
				t.Errorf("page shows %q", never)
			}
		}
	})

	t.Run("CodeFromPaper", func(t *testing.T) {
		for _, typed := range []string{printed(code), strings.ToUpper(code), strings.ReplaceAll(printed(code), " ", "-")} {
			path := "/attestations/" + strings.ReplaceAll(typed, " ", "%20")
			if v := s.Must(200, "GET", path, nil, "Accept", "application/json"); v["dossier_id"] != float64(id) {
				t.Errorf("%q: %v", typed, v)
			}
		}
		if r := s.Do("GET", "/attestations/"+strings.Repeat("a", 32), nil, "Accept", "application/json"); r.StatusCode != 404 {
			t.Errorf("unknown code: %d", r.StatusCode)
		}
	})

	t.Run("Compare", func(t *testing.T) {
		tampered := bytes.Clone(pdf)
		tampered[len(tampered)/3] ^= 1
		form := func(field string, data []byte) (string, []byte) {
			var b bytes.Buffer
			mw := multipart.NewWriter(&b)
			fw, _ := mw.CreateFormFile(field, "attestation.pdf")
			_, _ = fw.Write(data)
			_ = mw.Close()
			return mw.FormDataContentType(), b.Bytes()
		}
		for _, tc := range []struct {
			name   string
			ctype  string
			body   []byte
			status int
			want   string // in the JSON body
		}{
			{"RawSame", "application/pdf", pdf, 200, `{"match":true}`},
			{"RawTampered", "application/pdf", tampered, 200, `{"match":false}`},
			{"RawEmpty", "application/pdf", nil, 422, `"pointer":"/pdf"`},
			{"TooLarge", "application/pdf", bytes.Repeat([]byte("%"), 5<<20+1), 413, `"code":"body_too_large"`},
			{"WrongType", "text/plain", pdf, 415, `"code":"unsupported_media_type"`},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := s.Do("POST", "/attestations/"+code, tc.body, "Content-Type", tc.ctype, "Accept", "application/json")
				if r.StatusCode != tc.status || !strings.Contains(string(r.Body), tc.want) {
					t.Errorf("%d %s, want %d with %s", r.StatusCode, r.Body, tc.status, tc.want)
				}
			})
		}
		ct, body := form("pdf", pdf)
		if r := s.Do("POST", "/attestations/"+printed(code)[:4]+strings.ToUpper(code[4:]), body, "Content-Type", ct, "Accept", "application/json"); r.StatusCode != 200 || string(bytes.TrimSpace(r.Body)) != `{"match":true}` {
			t.Errorf("multipart: %d %s", r.StatusCode, r.Body)
		}
		ct, body = form("other", pdf)
		if r := s.Do("POST", "/attestations/"+code, body, "Content-Type", ct, "Accept", "application/json"); r.StatusCode != 422 {
			t.Errorf("multipart without pdf: %d %s", r.StatusCode, r.Body)
		}
		// The page's form, as a browser posts it.
		ct, body = form("pdf", tampered)
		r := s.Do("POST", "/attestations/"+code, body, "Content-Type", ct, "Accept", "text/html")
		if r.StatusCode != 200 || !strings.Contains(string(r.Body), "Fichier différent") {
			t.Errorf("form: %d\n%s", r.StatusCode, r.Body)
		}
		ct, body = form("pdf", pdf)
		if r := s.Do("POST", "/attestations/"+code, body, "Content-Type", ct, "Accept", "text/html"); !strings.Contains(string(r.Body), "Fichier identique") {
			t.Errorf("form: %d\n%s", r.StatusCode, r.Body)
		}
		if r := s.Do("POST", "/attestations/"+strings.Repeat("b", 32), pdf, "Content-Type", "application/pdf", "Accept", "application/json"); r.StatusCode != 404 {
			t.Errorf("unknown code: %d", r.StatusCode)
		}
	})
}
