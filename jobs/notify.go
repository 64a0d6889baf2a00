package jobs

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"github.com/aptflow/aptflow/templates"
	"github.com/aptflow/aptflow/workflow"
)

// querier is what a pool and a transaction share.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// riverpgxv5Driver names River's pgx driver type for JobCompleteTx.
type riverpgxv5Driver = riverpgxv5.Driver

// NotifyFollowerArgs tells one follower about the activity on one dossier
// since the last time they were told.
type NotifyFollowerArgs struct {
	DossierID     int64 `json:"dossier_id"`
	InstructeurID int64 `json:"instructeur_id"`
}

// Kind is the job kind; it never changes once shipped.
func (NotifyFollowerArgs) Kind() string { return "notify_follower" }

// InsertOpts puts notifications on their own queue.
func (NotifyFollowerArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueNotification}
}

// NotifyFollowerWorker turns the new activity on a dossier into one e-mail
// to one follower. Each activity schedules one of these jobs at the end of
// the coalescing window; the first to run takes every activity so far and
// the others find nothing new, so a burst becomes one e-mail.
type NotifyFollowerWorker struct {
	river.WorkerDefaults[NotifyFollowerArgs]
	cfg  Config
	deps Deps
}

// Work has the workflow write the delivery and advance the follower's
// cursor, enqueues the e-mail and completes the job, in one transaction.
func (w *NotifyFollowerWorker) Work(ctx context.Context, job *river.Job[NotifyFollowerArgs]) error {
	a := job.Args
	return pgx.BeginFunc(ctx, w.deps.Pool, func(tx pgx.Tx) error {
		id, err := w.deps.Service.NotifyFollowerTx(ctx, tx, a.DossierID, a.InstructeurID)
		if err != nil {
			return err
		}
		if id != 0 {
			if err := insertEmailJob(ctx, river.ClientFromContext[pgx.Tx](ctx), tx, id, workflow.MailNotification, w.cfg); err != nil {
				return err
			}
		}
		_, err = river.JobCompleteTx[*riverpgxv5Driver](ctx, tx, job)
		return err
	})
}

// Inserter inserts jobs in a transaction; *river.Client is one.
type Inserter interface {
	InsertTx(ctx context.Context, tx pgx.Tx, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
}

// insertEmailJob inserts in tx the send_email job of a delivery the
// workflow wrote in tx.
func insertEmailJob(ctx context.Context, client Inserter, tx pgx.Tx, deliveryID int64, kind string, cfg Config) error {
	e := emailJob(deliveryID, kind, cfg)
	if _, err := client.InsertTx(ctx, tx, e.Args, e.InsertOpts); err != nil {
		return fmt.Errorf("insert e-mail job of delivery %d: %w", deliveryID, err)
	}
	return nil
}

// activity is an activity row as e-mails show it.
type activity struct {
	templates.Activity
	body        string
	prenom, nom string // the applicant, for digests
	proc        procedureRef
}

func loadActivities(ctx context.Context, q querier, ids []int64) ([]activity, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := q.Query(ctx, `
		SELECT a.id, a.dossier_id, a.kind, a.author, a.body, a.at,
			d.demandeur->>'prenom', d.demandeur->>'nom',
			p.libelle, p.service_nom, coalesce(p.lien_instructeur, '')
		FROM activities a JOIN dossiers d ON d.id = a.dossier_id JOIN procedures p ON p.id = d.procedure_id
		WHERE a.id = ANY($1) ORDER BY a.dossier_id, a.id`, ids)
	if err != nil {
		return nil, fmt.Errorf("load activities: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (activity, error) {
		var a activity
		var id int64
		var prenom, nom *string
		err := r.Scan(&id, &a.DossierID, &a.Kind, &a.Author, &a.body, &a.At, &prenom, &nom,
			&a.proc.libelle, &a.proc.service, &a.proc.lienInstructeur)
		a.Excerpt = a.body // the templates cut it to a one-line excerpt
		if prenom != nil && nom != nil {
			a.prenom, a.nom = *prenom, *nom
		}
		return a, err
	})
}

// groupActivities returns the activities flat (one dossier) and, for a
// digest, grouped by dossier, each linked with its procedure's
// liens.instructeur, with the procedures of the dossiers.
func groupActivities(acts []activity, byDossier bool) ([]templates.Activity, []templates.DossierSummary, []procedureRef) {
	flat := make([]templates.Activity, 0, len(acts))
	var groups []templates.DossierSummary
	var procs []procedureRef
	for _, a := range acts {
		flat = append(flat, a.Activity)
		if !byDossier {
			continue
		}
		if n := len(groups); n == 0 || groups[n-1].ID != a.DossierID {
			groups = append(groups, templates.DossierSummary{ID: a.DossierID, Prenom: a.prenom, Nom: a.nom,
				URL: workflow.DossierURL(a.proc.lienInstructeur, a.DossierID)})
			procs = append(procs, a.proc)
		}
		g := &groups[len(groups)-1]
		g.Activities = append(g.Activities, a.Activity)
		if a.At.After(g.LastActivityAt) {
			g.LastActivityAt = a.At
		}
	}
	return flat, groups, procs
}

// procedureRef is what an instructeur's list of dossiers shows of their
// procedures: who signs it, which démarche, where each dossier is.
type procedureRef struct {
	libelle, service, lienInstructeur string
}

// signedBy sets what an e-mail listing dossiers of these procedures says
// of them: signed by their services (one, or several joined), and of one
// démarche if they share one.
func signedBy(data *templates.EmailData, procs []procedureRef) {
	var services, libelles []string
	for _, p := range procs {
		if !slices.Contains(services, p.service) {
			services = append(services, p.service)
		}
		if !slices.Contains(libelles, p.libelle) {
			libelles = append(libelles, p.libelle)
		}
	}
	slices.Sort(services)
	data.ServiceNom = templates.JoinFR(services)
	if len(libelles) == 1 {
		data.ProcedureLibelle = libelles[0]
	}
}
