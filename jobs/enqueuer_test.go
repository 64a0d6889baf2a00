package jobs_test

import (
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertest"

	"github.com/aptflow/aptflow/internal/apptest"
	"github.com/aptflow/aptflow/jobs"
	"github.com/aptflow/aptflow/workflow"
)

// TestEnqueuerOfTheWorkers: an Enqueuer without a client of its own (the
// workers' Service's) inserts with the client of the job that runs, and
// refuses, without inserting, outside a job.
func TestEnqueuerOfTheWorkers(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{NoWorkers: true})
	enq := jobs.NewEnqueuer(nil, s.Jobs)
	task := workflow.SendEmail{DeliveryID: 7}
	t.Run("InAJob", func(t *testing.T) {
		err := pgx.BeginFunc(t.Context(), s.Pool, func(tx pgx.Tx) error {
			if err := enq.EnqueueTx(rivertest.WorkContext(t.Context(), s.River), tx, task); err != nil {
				return err
			}
			job := rivertest.RequireInsertedTx[*riverpgxv5.Driver](t.Context(), t, tx, &jobs.SendEmailArgs{}, nil)
			if job.Args.DeliveryID != 7 || job.MaxAttempts != s.Jobs.EmailMaxAttempts {
				t.Errorf("job %+v", job)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	t.Run("OutsideAJob", func(t *testing.T) {
		err := pgx.BeginFunc(t.Context(), s.Pool, func(tx pgx.Tx) error {
			if err := enq.EnqueueTx(t.Context(), tx, task); err == nil {
				t.Error("enqueued without a client")
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}
