package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/aptflow/aptflow/api"
	"github.com/aptflow/aptflow/internal/redact"
	"github.com/aptflow/aptflow/workflow"
)

// The demo's people. Their addresses are under .example (RFC 2606), so
// that a demo pointed at a real SMTP relay mails nobody.
var (
	demoInstructeurs = []struct{ email, nom string }{
		{"camille.martin@prefecture-rhone.example", "Camille Martin"},
		{"dominique.lefevre@prefecture-rhone.example", "Dominique Lefèvre"},
	}
	demoDemandeurs = []struct {
		prenom, nom, naissance, lieu, nationalite, etablissement string
		employeur, siret, adresse, emploi                        string
		heures                                                   float64
	}{
		{"Élodie", "Dupré", "2003-04-12", "Montréal (Canada)", "canadienne", "Université Lumière Lyon 2",
			"Boulangerie Œuvre & Fils", "73282932000074", "3 place Bellecour, 69002 Lyon", "vendeuse en boulangerie", 17.5},
		{"Joël", "Nkoulou-Bœuf", "2001-11-30", "Douala (Cameroun)", "camerounaise", "Université Claude Bernard Lyon 1",
			"Librairie Ségolène & Cie", "44241521100014", "12 rue Mercière, 69002 Lyon", "libraire", 20},
		{"Anaïs", "Château", "2002-07-01", "Québec (Canada)", "canadienne", "INSA Lyon",
			"Crêperie Saint-Jean", "38431082500011", "5 rue Saint-Jean, 69005 Lyon", "serveuse", 12},
		{"Zoé", "Lefèvre-Ngô", "2004-02-29", "Hô-Chi-Minh-Ville (Viêt Nam)", "vietnamienne", "Sciences Po Lyon",
			"Fromagerie Mère Brazier", "80349669000014", "2 quai Saint-Antoine, 69002 Lyon", "vendeuse", 15},
	}
)

// runDemo fills a running aptflow with a demo, through its real HTTP API:
// a procedure of the Préfecture du Rhône, two instructeurs, four dossiers;
// one is accepted (an attestation), one refused, one followed with a
// message, one left en construction. It then says where to look.
func runDemo(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	urlFlag := fs.String("url", "", "aptflow's base URL (default: PUBLIC_URL, else http://HTTP_ADDR)")
	tokenFlag := fs.String("token", "", "an API token (default: APTFLOW_TOKEN, else one created in DATABASE_URL)")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		fmt.Fprint(stderr, "usage: aptflow demo [--url URL] [--token TOKEN]\n")
		return errUsage
	}
	base, err := demoURL(*urlFlag, getenv)
	if err != nil {
		return err
	}
	token := cmp.Or(*tokenFlag, getenv("APTFLOW_TOKEN"))
	if token == "" {
		if token, err = demoToken(ctx, getenv); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "API token created for the demo (kept hashed in the database): %s\n", token)
	}
	c := &demoClient{base: base, token: token, http: &http.Client{Timeout: 30 * time.Second}}
	if err := c.waitReady(ctx, stdout); err != nil {
		return err
	}
	// The server's host, not its URL: its root is no page to open.
	fmt.Fprintf(stdout, "aptflow demo, through the API of the aptflow on %s\n", strings.TrimPrefix(strings.TrimPrefix(base, "https://"), "http://"))

	var proc struct {
		ID int64 `json:"id"`
	}
	if err := c.do(ctx, "POST", "/v1/procedures", map[string]any{
		"libelle":          "Autorisation provisoire de travail (APT) pour les étudiants",
		"service":          map[string]any{"nom": "Préfecture du Rhône", "adresse": "18 rue de Bonnel\n69003 Lyon"},
		"stale_after_days": 30,
		"heures_hebdo_max": 20,
	}, &proc); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "  procedure %d: Préfecture du Rhône, at most 20 h a week, stale after 30 days\n", proc.ID)
	for _, in := range demoInstructeurs {
		if err := c.do(ctx, "POST", fmt.Sprintf("/v1/procedures/%d/instructeurs", proc.ID),
			map[string]any{"email": in.email, "nom": in.nom}, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "  instructeur %s <%s>\n", in.nom, in.email)
	}
	camille, dominique := demoInstructeurs[0].email, demoInstructeurs[1].email

	// Dates follow today in Paris, so that the demo stays valid whenever it runs.
	today := workflow.DateOf(time.Now(), workflow.Paris())
	ids := make([]int64, len(demoDemandeurs))
	for i, p := range demoDemandeurs {
		var d struct {
			ID int64 `json:"id"`
		}
		debut := today.AddDays(14 + 7*i)
		if err := c.do(ctx, "POST", "/v1/dossiers", map[string]any{
			"procedure_id": proc.ID,
			"usager_email": demoEmail(p.prenom, p.nom),
			"demandeur": map[string]any{
				"nom": p.nom, "prenom": p.prenom, "date_naissance": p.naissance, "lieu_naissance": p.lieu,
				"nationalite":   p.nationalite,
				"titre_sejour":  map[string]any{"numero": fmt.Sprintf("69%08d", 1234567+i), "expire_le": today.AddMonths(18)},
				"etablissement": p.etablissement,
				"employeur":     map[string]any{"raison_sociale": p.employeur, "siret": p.siret, "adresse": p.adresse},
				"emploi":        p.emploi, "heures_hebdo": p.heures,
				"date_debut": debut, "date_fin": debut.AddMonths(6),
			},
		}, &d); err != nil {
			return err
		}
		ids[i] = d.ID
		fmt.Fprintf(stdout, "  dossier %d: %s %s, %s at %s, en_construction\n", d.ID, p.prenom, p.nom, p.emploi, p.employeur)
	}

	event := func(id int64, ev, inst, motivation string) error {
		body := map[string]any{"event": ev, "instructeur": inst}
		if motivation != "" {
			body["motivation"] = motivation
		}
		var d struct {
			State string `json:"state"`
		}
		if err := c.do(ctx, "POST", fmt.Sprintf("/v1/dossiers/%d/events", id), body, &d); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "  dossier %d: %s by %s → %s\n", id, ev, inst, d.State)
		return nil
	}
	accepted, refused, followed := ids[0], ids[1], ids[2]
	for _, step := range []struct {
		id                   int64
		ev, inst, motivation string
	}{
		{accepted, "passer_en_instruction", camille, ""},
		{accepted, "accepter", camille, "Contrat de travail conforme ; volume horaire compatible avec les études."},
		{refused, "passer_en_instruction", dominique, ""},
		{refused, "refuser", dominique, "Le titre de séjour présenté ne permet pas d'exercer une activité salariée."},
	} {
		if err := event(step.id, step.ev, step.inst, step.motivation); err != nil {
			return err
		}
	}
	if err := c.do(ctx, "PUT", fmt.Sprintf("/v1/dossiers/%d/followers/%s", followed, url.PathEscape(dominique)), nil, nil); err != nil {
		return err
	}
	if err := c.do(ctx, "POST", fmt.Sprintf("/v1/dossiers/%d/messages", followed),
		map[string]any{"from": "usager", "body": "Bonjour, je joins la promesse d'embauche signée. Bien cordialement."}, nil); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "  dossier %d: followed by %s; a message from the applicant (a notification follows)\n", followed, dominique)

	fmt.Fprintf(stdout, "waiting for the workers (attestation, e-mails)…\n")
	d, done := c.waitJobs(ctx, accepted, 60*time.Second)
	if !done {
		fmt.Fprintf(stdout, "  not done after a minute: is an `aptflow serve` or `aptflow work` running on this database?\n")
	}
	if d != nil {
		for _, e := range d.Emails {
			fmt.Fprintf(stdout, "  dossier %d: e-mail %s to %s: %s\n", accepted, e.Kind, e.To, e.Status)
		}
	}

	// What a browser opens is printed as a link; what needs the token
	// (/v1/*, which a browser would answer 401) as a curl command.
	curl := func(args ...string) string {
		return "curl -fsS -H 'Authorization: Bearer " + token + "' " + strings.Join(args, " ")
	}
	fmt.Fprintf(stdout, "\nWhere to look:\n")
	fmt.Fprintf(stdout, "  jobs (River UI):  %s/riverui/  (OPS_BASIC_AUTH credentials, or from this machine)\n", base)
	fmt.Fprintf(stdout, "  e-mails:          %s\n", demoMailbox(ctx, getenv))
	fmt.Fprintf(stdout, "  a dossier:        %s\n", curl(fmt.Sprintf("'%s/v1/dossiers/%d'", base, accepted)))
	if d != nil && d.Attestation != nil {
		fmt.Fprintf(stdout, "  attestation PDF:  %s\n", curl("-o attestation.pdf", "'"+d.Attestation.URL+"'"))
		fmt.Fprintf(stdout, "  its verification: %s  (public: the URL of its QR code)\n", d.Attestation.VerificationURL)
	} else {
		fmt.Fprintf(stdout, "  attestation PDF:  once rendered, %s\n", curl("-o attestation.pdf", fmt.Sprintf("'%s/v1/dossiers/%d/attestation.pdf'", base, accepted)))
	}
	fmt.Fprintf(stdout, "  instructeur tabs: %s\n", curl(fmt.Sprintf("'%s/v1/instructeurs/%s/dossiers?tab=tous'", base, url.PathEscape(camille))))
	fmt.Fprintf(stdout, "  the API:          %s/openapi.yaml\n", base)
	return nil
}

// demoURL is where aptflow listens, as a client reaches it.
func demoURL(flagURL string, getenv func(string) string) (string, error) {
	raw := cmp.Or(flagURL, getenv("PUBLIC_URL"))
	if raw == "" {
		host, port, err := net.SplitHostPort(cmp.Or(getenv("HTTP_ADDR"), "127.0.0.1:8080"))
		if err != nil {
			return "", fmt.Errorf("HTTP_ADDR: %w", err)
		}
		// A server listening on every interface is reached on the loopback.
		if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
			host = "127.0.0.1"
		}
		raw = "http://" + net.JoinHostPort(host, port)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("demo: an http(s) URL is expected, got %q", raw)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// demoToken creates an API token in the database, for a demo run without one.
func demoToken(ctx context.Context, getenv func(string) string) (string, error) {
	databaseURL := getenv("DATABASE_URL")
	if databaseURL == "" {
		return "", errors.New("demo: an API token is needed: --token, APTFLOW_TOKEN, or DATABASE_URL to create one")
	}
	pool, err := openPool(ctx, Config{DatabaseURL: databaseURL, DatabasePooler: getenv("DATABASE_POOLER")}, 2)
	if err != nil {
		return "", err
	}
	defer pool.Close()
	return api.CreateToken(ctx, pool, "demo "+time.Now().Format(time.RFC3339))
}

// demoEmail is the applicant's address: ASCII, from their name.
func demoEmail(prenom, nom string) string {
	fold := strings.NewReplacer("é", "e", "è", "e", "ë", "e", "ê", "e", "É", "e", "ï", "i", "î", "i", "ô", "o",
		"â", "a", "à", "a", "ç", "c", "ü", "u", "û", "u", "œ", "oe", "Œ", "oe", " ", "-")
	return strings.ToLower(fold.Replace(prenom)+"."+fold.Replace(nom)) + "@etudiant.example"
}

// demoMailbox says where the e-mails went: mailpit's web UI when SMTP_URL
// is a mailpit (its UI answers on port 8025 of the same host), the SMTP
// server otherwise, or the .eml files of MAIL_DIR without SMTP.
func demoMailbox(ctx context.Context, getenv func(string) string) string {
	smtpURL := getenv("SMTP_URL")
	if smtpURL == "" {
		dir := cmp.Or(getenv("MAIL_DIR"), "var/mail")
		if abs, err := filepath.Abs(dir); err == nil {
			dir = abs
		}
		return fmt.Sprintf(".eml files under %s (MAIL_DIR of the server, relative to its working directory)", dir)
	}
	u, err := url.Parse(smtpURL)
	if err != nil {
		return "the SMTP server of SMTP_URL"
	}
	ui := "http://" + net.JoinHostPort(u.Hostname(), "8025")
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", ui+"/api/v1/info", nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return ui + "/  (mailpit)"
		}
	}
	return "the SMTP server " + redact.URL(smtpURL) + " (SMTP_URL)"
}

// demoClient calls the API with a token.
type demoClient struct {
	base, token string
	http        *http.Client
}

// do sends a JSON request and decodes the JSON answer into out; an error
// status is an error that quotes the problem's code and detail.
func (c *demoClient) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("demo: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("demo: %s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		var p api.Problem
		_ = json.Unmarshal(b, &p)
		return fmt.Errorf("demo: %s %s: %s %s: %s", method, path, resp.Status, p.Code, p.Detail)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("demo: %s %s: %w", method, path, err)
		}
	}
	return nil
}

// Waits for the server: a server that answers but is not ready yet (it is
// starting) gets demoReadyWait; an address where nothing answers at all is
// more likely the wrong one than a server about to listen, and gets
// demoAnswerWait.
const (
	demoReadyWait  = 30 * time.Second
	demoAnswerWait = 10 * time.Second
)

// waitReady polls /readyz: the demo may start right after the server. It
// says at once what it waits for, and how to point it elsewhere.
func (c *demoClient) waitReady(ctx context.Context, stdout io.Writer) error {
	start := time.Now()
	for i := 0; ; i++ {
		req, err := http.NewRequestWithContext(ctx, "GET", c.base+"/readyz", nil)
		if err != nil {
			return err
		}
		resp, err := c.http.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = errors.New(resp.Status)
		}
		if i == 0 {
			fmt.Fprintf(stdout, "waiting for aptflow at %s (--url, else PUBLIC_URL or HTTP_ADDR as the server has them)…\n", c.base)
		}
		answered := resp != nil
		if waited := time.Since(start); (answered && waited > demoReadyWait) || (!answered && waited > demoAnswerWait) {
			return fmt.Errorf("demo: aptflow is not ready at %s: %w; is `make run` or `aptflow serve` running? "+
				"If it listens elsewhere, run the demo line that `make run` printed, or pass --url", c.base, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// demoDossier is what the demo reads of a dossier.
type demoDossier struct {
	Emails []struct {
		Kind   string `json:"kind"`
		To     string `json:"to"`
		Status string `json:"status"`
	} `json:"emails"`
	Attestation *struct {
		URL             string `json:"url"`
		VerificationURL string `json:"verification_url"`
	} `json:"attestation"`
}

// waitJobs polls the accepted dossier until its attestation is rendered and
// none of its e-mails is pending, or timeout. It returns the last reading.
func (c *demoClient) waitJobs(ctx context.Context, id int64, timeout time.Duration) (*demoDossier, bool) {
	deadline := time.Now().Add(timeout)
	var last *demoDossier
	for time.Now().Before(deadline) {
		var d demoDossier
		if err := c.do(ctx, "GET", fmt.Sprintf("/v1/dossiers/%d", id), nil, &d); err == nil {
			last = &d
			pending := d.Attestation == nil
			for _, e := range d.Emails {
				pending = pending || e.Status == "pending"
			}
			if !pending {
				return last, true
			}
		}
		select {
		case <-ctx.Done():
			return last, false
		case <-time.After(250 * time.Millisecond):
		}
	}
	return last, false
}
