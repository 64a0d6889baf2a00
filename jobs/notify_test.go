package jobs_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/robfig/cron/v3"

	"github.com/aptflow/aptflow/internal/apptest"
	"github.com/aptflow/aptflow/internal/smtptest"
	"github.com/aptflow/aptflow/jobs"
	"github.com/aptflow/aptflow/workflow"
)

// followed sets up a dossier en instruction followed by two instructeurs
// (a took it, b follows it) and a third instructeur c who does not.
func followed(t *testing.T, s *apptest.Stack) (id int64, usager, a, b, c string) {
	t.Helper()
	proc := s.Procedure()
	a = s.Instructeur(proc, "Camille Martin")
	b = s.Instructeur(proc, "Dominique Petit")
	c = s.Instructeur(proc, "Sacha Bernard")
	id, usager = s.Dossier(proc)
	s.Must(204, "PUT", fmt.Sprintf("/v1/dossiers/%d/followers/%s", id, a), nil)
	s.Must(204, "PUT", fmt.Sprintf("/v1/dossiers/%d/followers/%s", id, b), nil)
	return id, usager, a, b, c
}

// TestActivityNotifications: each kind of activity reaches each follower
// except its author; the applicant gets the instructeur's message.
func TestActivityNotifications(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		act    func(s *apptest.Stack, id int64, a string)
		author string // "a" when instructeur a is the author
		line   string // what the e-mail says happened
		absent string // what it must not show ("" for nothing)
	}{
		{"MessageUsager", func(s *apptest.Stack, id int64, a string) {
			s.Must(201, "POST", fmt.Sprintf("/v1/dossiers/%d/messages", id), map[string]any{"from": "usager", "body": "Voici mon contrat signé."})
		}, "", "Voici mon contrat signé.", ""},
		{"LongMessageUsager", func(s *apptest.Stack, id int64, a string) {
			// A notification shows an excerpt, not the whole message.
			s.Must(201, "POST", fmt.Sprintf("/v1/dossiers/%d/messages", id), map[string]any{"from": "usager", "body": "Début. " + strings.Repeat("pièce ", 60) + "FIN"})
		}, "", "Début. pièce pièce", "FIN"},
		{"MessageInstructeur", func(s *apptest.Stack, id int64, a string) {
			s.Must(201, "POST", fmt.Sprintf("/v1/dossiers/%d/messages", id), map[string]any{"from": a, "body": "Merci de fournir la promesse d'embauche."})
		}, "a", "Merci de fournir la promesse d'embauche.", ""},
		{"Avis", func(s *apptest.Stack, id int64, a string) {
			s.Must(201, "POST", fmt.Sprintf("/v1/dossiers/%d/avis", id), map[string]any{"expert": "expert@direccte.test", "body": "Avis favorable."})
		}, "", "Avis favorable.", ""},
		{"Modification", func(s *apptest.Stack, id int64, a string) {
			s.Must(200, "PATCH", fmt.Sprintf("/v1/dossiers/%d", id), map[string]any{"demandeur": map[string]any{"emploi": "serveuse"}})
		}, "", "modifi", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := apptest.Start(t, apptest.Options{})
			id, usager, a, b, c := followed(t, s)
			tt.act(s, id, a)
			got := s.Mailpit.WaitFor(t, "to:"+b, 1, 20*time.Second)
			m, err := s.Mailpit.Message(t.Context(), got[0].ID)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(m.Subject, fmt.Sprint(id)) || !strings.Contains(m.Text, tt.line) ||
				(tt.absent != "" && (strings.Contains(m.Text, tt.absent) || strings.Contains(m.HTML, tt.absent))) {
				t.Fatalf("notification %q:\n%s", m.Subject, m.Text)
			}
			if tt.author == "a" {
				// The applicant is told; the author is not.
				msg := s.Mailpit.WaitFor(t, "to:"+usager, 1, 20*time.Second)
				full, _ := s.Mailpit.Message(t.Context(), msg[0].ID)
				if !strings.Contains(full.Text, tt.line) || !strings.Contains(full.Subject, fmt.Sprint(id)) {
					t.Fatalf("applicant's e-mail %q:\n%s", full.Subject, full.Text)
				}
			} else {
				s.Mailpit.WaitFor(t, "to:"+a, 1, 20*time.Second)
			}
			// Wait for every job to finish, then count.
			waitJobsDone(t, s)
			for who, want := range map[string]int{a: map[bool]int{true: 0, false: 1}[tt.author == "a"], b: 1, c: 0} {
				if n, _ := s.Mailpit.Count(t.Context(), "to:"+who); n != want {
					t.Errorf("%s got %d e-mails, want %d", who, n, want)
				}
			}
			if tt.author != "a" {
				if n, _ := s.Mailpit.Count(t.Context(), "to:"+usager); n != 0 {
					t.Errorf("applicant got %d e-mails", n)
				}
			}
		})
	}
}

// waitJobsDone waits until no River job is left to run.
func waitJobsDone(t *testing.T, s *apptest.Stack) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var n int
		if err := s.Pool.QueryRow(context.Background(), `SELECT count(*) FROM river_job WHERE state NOT IN ('completed', 'cancelled', 'discarded')`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d jobs still pending", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestUnfollowStopsNotifications(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{Jobs: jobs.Config{NotifyCoalesce: 2 * time.Second}})
	id, _, a, b, _ := followed(t, s)
	s.Must(201, "POST", fmt.Sprintf("/v1/dossiers/%d/messages", id), map[string]any{"from": "usager", "body": "Bonjour"})
	// b unfollows while its notification waits in the queue.
	s.Must(204, "DELETE", fmt.Sprintf("/v1/dossiers/%d/followers/%s", id, b), nil)
	s.Mailpit.WaitFor(t, "to:"+a, 1, 20*time.Second)
	waitJobsDone(t, s)
	if n, _ := s.Mailpit.Count(t.Context(), "to:"+b); n != 0 {
		t.Fatalf("former follower got %d e-mails", n)
	}
}

func TestBurstIsOneEmail(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{Jobs: jobs.Config{NotifyCoalesce: 2 * time.Second}})
	id, _, a, b, _ := followed(t, s)
	for i := 1; i <= 5; i++ {
		s.Must(201, "POST", fmt.Sprintf("/v1/dossiers/%d/messages", id), map[string]any{"from": "usager", "body": fmt.Sprintf("Message nº %d", i)})
	}
	for _, who := range []string{a, b} {
		got := s.Mailpit.WaitFor(t, "to:"+who, 1, 20*time.Second)
		m, _ := s.Mailpit.Message(t.Context(), got[0].ID)
		for i := 1; i <= 5; i++ {
			if !strings.Contains(m.Text, fmt.Sprintf("Message nº %d", i)) {
				t.Errorf("grouped e-mail lacks message %d:\n%s", i, m.Text)
			}
		}
	}
	waitJobsDone(t, s)
	for _, who := range []string{a, b} {
		if n, _ := s.Mailpit.Count(t.Context(), "to:"+who); n != 1 {
			t.Errorf("%s got %d e-mails, want 1", who, n)
		}
	}
}

func TestDailyDigest(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{})
	id, _, a, b, _ := followed(t, s)
	s.Must(200, "PUT", "/v1/instructeurs/"+b+"/preferences", map[string]any{"notifications": "daily"})
	s.Must(201, "POST", fmt.Sprintf("/v1/dossiers/%d/messages", id), map[string]any{"from": "usager", "body": "Pièce ajoutée"})
	s.Must(201, "POST", fmt.Sprintf("/v1/dossiers/%d/avis", id), map[string]any{"expert": "expert@direccte.test", "body": "Rien à signaler"})
	s.Mailpit.WaitFor(t, "to:"+a, 1, 20*time.Second)
	waitJobsDone(t, s)
	if n, _ := s.Mailpit.Count(t.Context(), "to:"+b); n != 0 {
		t.Fatalf("daily instructeur got %d instant e-mails", n)
	}
	res, err := jobs.SendDigests(t.Context(), s.Service, s.River, s.Jobs, time.Now())
	if err != nil || res.Digests != 1 || res.Activities != 2 {
		t.Fatalf("SendDigests = %+v, %v", res, err)
	}
	got := s.Mailpit.WaitFor(t, "to:"+b, 1, 20*time.Second)
	m, _ := s.Mailpit.Message(t.Context(), got[0].ID)
	for _, want := range []string{fmt.Sprint(id), "Pièce ajoutée", "Rien à signaler", "Élodie Dupré"} {
		if !strings.Contains(m.Text, want) {
			t.Errorf("digest lacks %q:\n%s", want, m.Text)
		}
	}
	// A second run finds nothing new.
	res, err = jobs.SendDigests(t.Context(), s.Service, s.River, s.Jobs, time.Now())
	if err != nil || res.Digests != 0 {
		t.Fatalf("second SendDigests = %+v, %v", res, err)
	}
	waitJobsDone(t, s)
	if n, _ := s.Mailpit.Count(t.Context(), "to:"+b); n != 1 {
		t.Fatalf("%d digests, want 1", n)
	}
}

// TestOneBadRecipient: a 550 for one follower fails their delivery only;
// the other follower still gets theirs.
func TestOneBadRecipient(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t)
	s := apptest.Start(t, apptest.Options{SMTPURL: srv.URL()})
	id, _, a, b, _ := followed(t, s)
	srv.OnRcpt(func(to string) error {
		if to == a {
			return smtptest.Reject(550, "5.1.1 mailbox unavailable")
		}
		return nil
	})
	s.Must(201, "POST", fmt.Sprintf("/v1/dossiers/%d/messages", id), map[string]any{"from": "usager", "body": "Bonjour"})
	waitJobsDone(t, s)
	if n := len(srv.To(b)); n != 1 {
		t.Fatalf("good follower got %d e-mails", n)
	}
	if n := len(srv.To(a)); n != 0 {
		t.Fatalf("bad follower got %d e-mails", n)
	}
	var status, lastErr string
	if err := s.Pool.QueryRow(t.Context(), `SELECT status, last_error FROM email_deliveries WHERE recipient = $1`, a).Scan(&status, &lastErr); err != nil {
		t.Fatal(err)
	}
	if status != "failed" || !strings.Contains(lastErr, "550") {
		t.Fatalf("bad follower's delivery: %s %q", status, lastErr)
	}
}

// TestPeriodicDigests: the digest job is a River periodic job; started
// with a short schedule, the client sends the digest by itself.
func TestPeriodicDigests(t *testing.T) {
	t.Parallel()
	sched, err := cron.ParseStandard("@every 1s")
	if err != nil {
		t.Fatal(err)
	}
	s := apptest.Start(t, apptest.Options{Jobs: jobs.Config{PeriodicJobs: []*river.PeriodicJob{jobs.NewSendDigestsPeriodicJob(sched)}}})
	id, _, _, b, _ := followed(t, s)
	s.Must(200, "PUT", "/v1/instructeurs/"+b+"/preferences", map[string]any{"notifications": "daily"})
	s.Must(201, "POST", fmt.Sprintf("/v1/dossiers/%d/messages", id), map[string]any{"from": "usager", "body": "Pièce ajoutée"})
	got := s.Mailpit.WaitFor(t, "to:"+b, 1, 30*time.Second)
	if !strings.Contains(got[0].Subject, "récapitulatif") {
		t.Fatalf("subject %q", got[0].Subject)
	}
}

// TestAvisByFollower: an expert who also follows the dossier as an
// instructeur is not told of their own avis; the other follower is.
func TestAvisByFollower(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{})
	id, usager, a, b, _ := followed(t, s)
	s.Must(201, "POST", fmt.Sprintf("/v1/dossiers/%d/avis", id), map[string]any{"expert": a, "body": "Avis favorable."})
	s.Mailpit.WaitFor(t, "to:"+b, 1, 20*time.Second)
	waitJobsDone(t, s)
	for who, want := range map[string]int{a: 0, b: 1, usager: 0} {
		if n, _ := s.Mailpit.Count(t.Context(), "to:"+who); n != want {
			t.Errorf("%s got %d e-mails, want %d", who, n, want)
		}
	}
}

// TestNotificationClock: an instant notification and a digest are
// delivery rows created at the Service's clock (here two months before the
// database's now()), like every other e-mail the workflow writes.
func TestNotificationClock(t *testing.T) {
	t.Parallel()
	now := t0.Add(123456 * time.Microsecond)
	s := apptest.Start(t, apptest.Options{Now: func() time.Time { return now }})
	id, _, a, b, _ := followed(t, s)
	s.Must(200, "PUT", "/v1/instructeurs/"+b+"/preferences", map[string]any{"notifications": "daily"})
	s.Must(201, "POST", fmt.Sprintf("/v1/dossiers/%d/messages", id), map[string]any{"from": "usager", "body": "Pièce ajoutée"})
	s.Mailpit.WaitFor(t, "to:"+a, 1, 20*time.Second)
	if res, err := jobs.SendDigests(t.Context(), s.Service, s.River, s.Jobs, now); err != nil || res.Digests != 1 {
		t.Fatalf("SendDigests = %+v, %v", res, err)
	}
	for _, kind := range []string{workflow.MailNotification, workflow.MailDigest} {
		var created time.Time
		if err := s.Pool.QueryRow(t.Context(), `SELECT created_at FROM email_deliveries WHERE kind = $1`, kind).Scan(&created); err != nil {
			t.Fatalf("%s delivery: %v", kind, err)
		}
		if !created.Equal(now) {
			t.Errorf("%s delivery created at %v, want the clock's %v", kind, created, now)
		}
	}
}
