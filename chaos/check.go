package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aptflow/aptflow/internal/harness"
)

// delivery is a row of aptflow's delivery log.
type delivery struct {
	ID        int64
	DossierID int64
	Kind      string
	Recipient string
	Status    string
	Attempts  int
	LastError *string
	SentAt    *time.Time
}

// messageID is the Message-ID aptflow gives the e-mail of delivery id
// (jobs.MessageID), as mailpit lists it.
func messageID(id int64) string {
	return "aptflow.delivery." + strconv.FormatInt(id, 10) + "@aptflow.chaos.localhost"
}

// deliveries reads the delivery log of some dossiers.
func (s *stack) deliveries(ctx context.Context, dossiers []int64) ([]delivery, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT id, dossier_id, kind, recipient, status, attempts, last_error, sent_at
		FROM email_deliveries WHERE dossier_id = ANY($1) ORDER BY id`, dossiers)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[delivery])
}

// waitSettled waits until every delivery of the dossiers is sent, failed
// or cancelled, or timeout passes, and returns the log as it then is.
func (s *stack) waitSettled(ctx context.Context, dossiers []int64, timeout time.Duration) ([]delivery, error) {
	deadline := time.Now().Add(timeout)
	for {
		ds, err := s.deliveries(ctx, dossiers)
		if err == nil && len(ds) > 0 && pending(ds) == 0 {
			return ds, nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return nil, err
			}
			return ds, nil
		}
		if err := harness.Sleep(ctx, 250*time.Millisecond); err != nil {
			return ds, err
		}
	}
}

func pending(ds []delivery) int {
	n := 0
	for _, d := range ds {
		if d.Status == "pending" {
			n++
		}
	}
	return n
}

// lastSent is when the last of ds was recorded sent.
func lastSent(ds []delivery) time.Time {
	var t time.Time
	for _, d := range ds {
		if d.SentAt != nil && d.SentAt.After(t) {
			t = *d.SentAt
		}
	}
	return t
}

// tally is what mailpit received of a set of deliveries.
type tally struct {
	Expected   int // deliveries that should have been received
	Delivered  int // of those, received at least once
	Lost       int // of those, never received, or not recorded sent
	Duplicates int // extra copies received (same Message-ID)
	Failed     int // deliveries given up (5xx): not expected in mailpit
	Strays     int // copies received of deliveries given up

	duplicated []int64 // the deliveries received more than once
}

// count matches ds with mailpit's messages by Message-ID. Deliveries whose
// recipient is refused on purpose are expected failed, the others sent and
// received.
func (s *stack) count(ctx context.Context, ds []delivery) (tally, error) {
	msgs, err := s.mp.Messages(ctx)
	if err != nil {
		return tally{}, err
	}
	received := map[string]int{}
	for _, m := range msgs {
		received[m.MessageID]++
	}
	var t tally
	for _, d := range ds {
		n := received[messageID(d.ID)]
		if strings.HasPrefix(d.Recipient, rejectedPrefix) {
			t.Failed++
			t.Strays += n
			continue
		}
		t.add(d.ID, n, d.Status == "sent")
	}
	return t, nil
}

// add counts an expected delivery, received n times, and recorded done
// (sent, delivered) or not.
func (t *tally) add(id int64, n int, done bool) {
	t.Expected++
	switch {
	case n == 0 || !done:
		t.Lost++
	default:
		t.Delivered++
		t.Duplicates += n - 1
		if n > 1 {
			t.duplicated = append(t.duplicated, id)
		}
	}
}

// scrape returns the value of one sample of base/metrics (0 if absent).
func scrape(ctx context.Context, base, sample string) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s/metrics: %s", base, resp.Status)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), sample+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, nil
}

// runningIn counts the jobs River shows running in the process whose
// River client is clientID.
func (s *stack) runningIn(ctx context.Context, clientID string) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `
		SELECT count(*) FROM river_job
		WHERE state = 'running' AND attempted_by[array_length(attempted_by, 1)] = $1`, clientID).Scan(&n)
	return n, err
}

// rescued counts the jobs of the dossiers that River's rescuer put back in
// the queue after their process died.
func (s *stack) rescued(ctx context.Context) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `
		SELECT count(*) FROM river_job WHERE errors::text LIKE '%Stuck job rescued%'`).Scan(&n)
	return n, err
}

// killedCopies counts, of the deliveries, those whose job of kind
// (send_email, deliver_webhook: both carry a delivery_id) was run by one of
// the killed River clients and then rescued: the deliveries a kill may
// duplicate.
func (s *stack) killedCopies(ctx context.Context, kind string, deliveries []int64, killed []string) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `
		SELECT count(DISTINCT (args->>'delivery_id')::bigint) FROM river_job
		WHERE kind = $3 AND (args->>'delivery_id')::bigint = ANY($1)
			AND attempted_by && $2 AND errors::text LIKE '%Stuck job rescued%'`, deliveries, killed, kind).Scan(&n)
	return n, err
}
