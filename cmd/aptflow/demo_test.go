package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aptflow/aptflow/internal/dbtest"
	"github.com/aptflow/aptflow/internal/mailpittest"
)

// TestDemo runs `aptflow demo` against a running `aptflow serve`, through
// its HTTP API: twice, first creating its own token, then with it.
func TestDemo(t *testing.T) {
	t.Parallel()
	mp := mailpittest.Start(t)
	dbURL := dbtest.URL(t)
	// Signed, as a préfecture's domain needs: every e-mail of the demo
	// must verify with the record dkim-record prints.
	e := baseEnv(t, dbURL, mp.SMTPURL())
	for k, v := range dkimEnv(t) {
		e[k] = v
	}
	base := e["PUBLIC_URL"]
	startRun(t, e, base, "serve")
	db := openDB(t, dbURL)

	demo := func(t *testing.T, e procEnv, args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if err := run(context.Background(), append([]string{"demo"}, args...), e.getenv, &out, &errb); err != nil {
			t.Fatalf("demo: %v\n%s\n%s", err, out.String(), errb.String())
		}
		return out.String()
	}

	// Without --url, the demo finds the server from PUBLIC_URL; without a
	// token, it makes one in DATABASE_URL.
	out := demo(t, e)
	t.Log(out)
	token := regexp.MustCompile(`aptf_[A-Za-z0-9_-]+`).FindString(out)
	if token == "" {
		t.Fatalf("no token printed:\n%s", out)
	}
	for _, want := range []string{base + "/riverui/", "attestation PDF:", "Élodie Dupré", "→ accepte", "→ refuse", "e-mail accepte to elodie.dupre@etudiant.example: sent"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}

	t.Run("Data", func(t *testing.T) {
		rows, err := db.Query(context.Background(), `
			SELECT d.state, d.demandeur->>'prenom', coalesce(d.motivation, ''),
				(SELECT count(*) FROM follows f WHERE f.dossier_id = d.id)
			FROM dossiers d ORDER BY d.id`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var got []string
		for rows.Next() {
			var state, prenom, motivation string
			var followers int
			if err := rows.Scan(&state, &prenom, &motivation, &followers); err != nil {
				t.Fatal(err)
			}
			got = append(got, state+" "+prenom+" "+map[bool]string{true: "motivé", false: "-"}[motivation != ""]+" "+strings.Repeat("f", followers))
		}
		want := []string{"accepte Élodie motivé f", "refuse Joël motivé f", "en_construction Anaïs - f", "en_construction Zoé - "}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("dossiers\n got %q\nwant %q", got, want)
		}
	})

	t.Run("Mail", func(t *testing.T) {
		msgs := mp.WaitFor(t, "to:elodie.dupre@etudiant.example", 2, 20*time.Second)
		withPDF := 0
		for _, m := range msgs {
			withPDF += m.Attachments
		}
		if withPDF != 1 {
			t.Errorf("the applicant got %d attachments, want the attestation", withPDF)
		}
		mp.WaitFor(t, `to:joel.nkoulou-boeuf@etudiant.example subject:refusé`, 1, 20*time.Second)
		// The acceptance with its PDF, the refusal, the notifications: all
		// signed, as received.
		checkMailpitSigned(t, mp, e)
	})

	t.Run("Verification", func(t *testing.T) {
		u := regexp.MustCompile(`its verification: (\S+)`).FindStringSubmatch(out)
		if u == nil {
			t.Fatalf("no verification URL printed")
		}
		req, _ := http.NewRequest("GET", u[1], nil)
		req.Header.Set("Accept", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v struct {
			Status string
			Prenom string
		}
		// The demo's period may not have started yet: either status.
		if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || (v.Status != "valide" && v.Status != "pas_encore_valide") || v.Prenom != "Élodie" {
			t.Errorf("verification %s: %d %+v %v", u[1], resp.StatusCode, v, err)
		}
	})

	t.Run("AgainWithToken", func(t *testing.T) {
		// The instructeurs exist already: the demo carries on.
		out := demo(t, procEnv{"APTFLOW_TOKEN": token}, "--url", base)
		if strings.Contains(out, "token created") || !strings.Contains(out, "→ accepte") {
			t.Errorf("second run:\n%s", out)
		}
	})

	t.Run("NothingListens", func(t *testing.T) {
		// The newcomer's mistake: the server listens elsewhere. The demo
		// says at once where it looks, then gives up saying what to do.
		var out, errb bytes.Buffer
		nowhere := "http://" + freeAddr(t)
		err := run(context.Background(), []string{"demo", "--url", nowhere}, procEnv{"APTFLOW_TOKEN": token}.getenv, &out, &errb)
		if err == nil || !strings.Contains(err.Error(), "make run") || !strings.Contains(out.String(), "waiting for aptflow at "+nowhere) {
			t.Errorf("demo against nothing: %v\n%s", err, out.String())
		}
	})

	t.Run("NoToken", func(t *testing.T) {
		var out, errb bytes.Buffer
		err := run(context.Background(), []string{"demo", "--url", base}, procEnv{}.getenv, &out, &errb)
		if err == nil || !strings.Contains(err.Error(), "APTFLOW_TOKEN") {
			t.Errorf("without token or database: %v", err)
		}
	})
}

func TestDemoURL(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		flag string
		env  procEnv
		want string
	}{
		"Default":        {"", procEnv{}, "http://127.0.0.1:8080"},
		"Flag":           {"https://apt.example.fr/", procEnv{"PUBLIC_URL": "http://other"}, "https://apt.example.fr"},
		"PublicURL":      {"", procEnv{"PUBLIC_URL": "https://apt.example.fr", "HTTP_ADDR": "0.0.0.0:9000"}, "https://apt.example.fr"},
		"AllInterfaces":  {"", procEnv{"HTTP_ADDR": "0.0.0.0:9000"}, "http://127.0.0.1:9000"},
		"NoHost":         {"", procEnv{"HTTP_ADDR": ":9000"}, "http://127.0.0.1:9000"},
		"IPv6Everywhere": {"", procEnv{"HTTP_ADDR": "[::]:9000"}, "http://127.0.0.1:9000"},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := demoURL(tc.flag, tc.env.getenv)
			if err != nil || got != tc.want {
				t.Errorf("demoURL = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	if _, err := demoURL("ftp://x", procEnv{}.getenv); err == nil {
		t.Error("ftp:// accepted")
	}
}
