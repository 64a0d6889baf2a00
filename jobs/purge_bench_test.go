package jobs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aptflow/aptflow/internal/apptest"
	"github.com/aptflow/aptflow/internal/dbtest"
	"github.com/aptflow/aptflow/jobs"
	"github.com/aptflow/aptflow/workflow"
)

// BenchmarkPurge times one purge over 1,000,000 dossiers of which 100,000
// have expired (APTFLOW_BENCH_DOSSIERS changes the total; a tenth always
// expires), reports the Go heap's peak during the purge, and the latency
// of transitions made meanwhile by 4 clients, on dossiers en construction
// picked at random (a tenth of them among those being purged: they wait
// for their batch, then answer 410):
//
//	go test -run '^$' -bench Purge -benchtime 1x -timeout 30m ./jobs/
//
// The data, loaded with INSERT ... SELECT: 10 procedures kept 12 months,
// 5 instructeurs each; a tenth of the dossiers expired (half en
// construction inactive for 13 to 23 months, half decided as long ago), 1%
// to be announced, the others recent, en instruction (never purged) or
// decided recently. Every dossier has one e-mail in the delivery log, the
// decided and en instruction ones a history row, a fifth a message, 3% a
// follower; the expired accepted ones an attestation of 4 kB stored out of
// line, as the real ones (22 kB) are; each expired dossier a stored
// idempotent response. Each iteration loads the data again (untimed).
func BenchmarkPurge(b *testing.B) {
	total := benchDossiers(b, 100)
	ctx := context.Background()
	pool := dbtest.New(b)
	now := time.Date(2026, 11, 26, 2, 0, 0, 0, time.UTC)
	cfg := jobs.Config{}
	client, err := jobs.NewClient(pool, cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	svc := workflow.NewService(pool, jobs.NewEnqueuer(client, cfg), workflow.Options{Now: func() time.Time { return now }})

	var elapsed time.Duration
	var peak uint64
	var before, during []time.Duration
	var answered, gone, rescued atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		start := time.Now()
		loadExpiring(b, pool, total, now, i > 0)
		b.Logf("loaded %d dossiers (%d expired) in %s", total, total/10, time.Since(start).Round(time.Millisecond))
		live, expired := transitionTargets(b, pool, now)

		// Transitions before the purge, on live dossiers, for comparison;
		// then during it, a tenth of them on expired ones: the purge
		// tombstones them first (410), or they win and go into
		// instruction, which keeps them.
		load := newTransitionLoad(svc, live[:len(live)/2], &answered, &gone, &rescued)
		time.Sleep(3 * time.Second)
		before = append(before, load.stop()...)
		mixed := slices.Concat(live[len(live)/2:], expired)
		for i := range mixed {
			j := (i * 7919) % len(mixed)
			mixed[i], mixed[j] = mixed[j], mixed[i]
		}
		rescued.Store(0)
		load = newTransitionLoad(svc, mixed, &answered, &gone, &rescued)
		runtime.GC()
		stop := sampleHeap(&peak)
		b.StartTimer()
		t := time.Now()
		res, err := jobs.Purge(ctx, svc, client, cfg, now)
		elapsed += time.Since(t)
		b.StopTimer()
		stop()
		during = append(during, load.stop()...)
		if err != nil {
			b.Fatal(err)
		}
		if res.Purged+int(rescued.Load()) != total/10 || res.Notices != total/100 {
			b.Fatalf("purge: %+v (%d rescued by a transition), want %d purged and %d notices", res, rescued.Load(), total/10, total/100)
		}
		b.Logf("purge: %+v in %s", res, elapsed.Round(time.Millisecond))
	}
	sec := elapsed.Seconds() / float64(b.N)
	b.ReportMetric(sec, "s/purge")
	b.ReportMetric(float64(total/10)/sec, "purged/s")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
	b.ReportMetric(ms(percentile(before, 0.99)), "p99-ms-before")
	b.ReportMetric(ms(percentile(during, 0.50)), "p50-ms-during")
	b.ReportMetric(ms(percentile(during, 0.99)), "p99-ms-during")
	b.ReportMetric(float64(len(during))/float64(b.N), "transitions-during")
	b.Logf("transitions answered: %d, of which %d on purged dossiers (410)", answered.Load(), gone.Load())
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// transitionTarget is a dossier en construction and an instructeur of its
// procedure.
type transitionTarget struct {
	id          int64
	instructeur string
	expired     bool
}

// transitionTargets picks dossiers en construction at random: live ones
// (36,000, none to be announced by this purge) and expired ones (2,000).
func transitionTargets(b *testing.B, pool *pgxpool.Pool, now time.Time) (live, expired []transitionTarget) {
	b.Helper()
	for _, pick := range []struct {
		cond    string
		n       int
		expired bool
		into    *[]transitionTarget
	}{{`d.expires_at > $1::timestamptz + interval '31 days'`, 36000, false, &live}, {`d.expires_at <= $1`, 2000, true, &expired}} {
		rows, _ := pool.Query(context.Background(), `
			SELECT d.id, 'instructeur' || d.procedure_id || '@prefecture.test' FROM dossiers d
			WHERE d.state = 'en_construction' AND `+pick.cond+` ORDER BY random() LIMIT $2`, now, pick.n)
		targets, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (transitionTarget, error) {
			t := transitionTarget{expired: pick.expired}
			return t, r.Scan(&t.id, &t.instructeur)
		})
		if err != nil {
			b.Fatal(err)
		}
		*pick.into = targets
	}
	return live, expired
}

// transitionLoad is 4 clients taking dossiers into instruction one after
// the other, each recording how long each transition took to answer.
type transitionLoad struct {
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	mu        sync.Mutex
	latencies []time.Duration
}

func newTransitionLoad(svc *workflow.Service, targets []transitionTarget, answered, gone, rescued *atomic.Int64) *transitionLoad {
	ctx, cancel := context.WithCancel(context.Background())
	l := &transitionLoad{cancel: cancel}
	var next atomic.Int64
	for range 4 {
		l.wg.Go(func() {
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if int(i) >= len(targets) {
					return
				}
				t := targets[i]
				start := time.Now()
				_, err := svc.Transition(ctx, t.id, workflow.Command{Event: workflow.PasserEnInstruction, Instructeur: t.instructeur})
				d := time.Since(start)
				switch code := workflow.ErrorCode(err); {
				case ctx.Err() != nil:
					return
				case err == nil:
					if t.expired {
						rescued.Add(1)
					}
				case code == workflow.EDossierSupprime:
					gone.Add(1)
				default:
					panic(fmt.Sprintf("transition of dossier %d: %v", t.id, err))
				}
				answered.Add(1)
				l.mu.Lock()
				l.latencies = append(l.latencies, d)
				l.mu.Unlock()
			}
		})
	}
	return l
}

// stop stops the clients and returns the latencies they recorded.
func (l *transitionLoad) stop() []time.Duration {
	l.cancel()
	l.wg.Wait()
	return l.latencies
}

// loadExpiring writes the benchmark's data with a few INSERT ... SELECT,
// after emptying the tables when again.
func loadExpiring(b *testing.B, pool *pgxpool.Pool, total int, now time.Time, again bool) {
	b.Helper()
	ctx := context.Background()
	dem, err := json.Marshal(apptest.Demandeur())
	if err != nil {
		b.Fatal(err)
	}
	steps := []struct {
		sql  string
		args []any
	}{
		{sql: `INSERT INTO procedures (libelle, service_nom, service_adresse, stale_after_days, heures_hebdo_max)
			SELECT 'APT ' || n, 'Préfecture ' || n, 'Adresse ' || n, 30, 20 FROM generate_series(1, 10) n`},
		{sql: `INSERT INTO instructeurs (email, nom)
			SELECT 'instructeur' || n || '@prefecture.test', 'Instructeur ' || n FROM generate_series(1, 50) n`},
		{sql: `INSERT INTO procedure_instructeurs (procedure_id, instructeur_id)
			SELECT p.id, i.id FROM procedures p JOIN instructeurs i ON (i.id - 1) % 10 = p.id - 1`},
		{sql: `INSERT INTO api_tokens (name, hash) VALUES ('bench', '\x00')`},
		// n % 10 = 0: expired, en construction for 13 to 23 months (n % 20
		// = 0) or decided as long ago (accepte or refuse). n % 100 = 1:
		// en construction, expiring within 20 days. 2-4: en construction,
		// recent; 5-6: en instruction for long; 7-9: decided recently.
		{sql: `INSERT INTO dossiers (procedure_id, state, usager_email, demandeur, last_activity_at, decided_at, created_at, updated_at)
			SELECT (n / 10) % 10 + 1, s, 'usager' || n || '@etudiant.test', jsonb_set($1::jsonb, '{nom}', to_jsonb('Nom ' || n)),
				la, CASE WHEN s IN ('accepte', 'refuse') THEN da END, la - interval '1 day', coalesce(da, la)
			FROM generate_series(1, $2::int) n,
				LATERAL (SELECT CASE
					WHEN n % 10 = 0 AND n % 20 = 0 THEN 'en_construction'
					WHEN n % 40 = 10 THEN 'accepte'
					WHEN n % 10 = 0 THEN 'refuse'
					WHEN n % 10 <= 4 THEN 'en_construction'
					WHEN n % 10 <= 6 THEN 'en_instruction'
					ELSE (ARRAY['accepte', 'refuse', 'sans_suite'])[n % 3 + 1] END AS s) st,
				LATERAL (SELECT CASE
					WHEN n % 10 = 0 THEN $3::timestamptz - interval '13 months' - (n % 300) * interval '1 day'
					WHEN n % 100 = 1 THEN $3::timestamptz - interval '12 months' + (n % 20 + 1) * interval '1 day'
					WHEN n % 10 <= 6 THEN $3::timestamptz - (n % 300) * interval '1 day'
					ELSE $3::timestamptz - (n % 300) * interval '1 day' END AS da) d,
				LATERAL (SELECT CASE WHEN st.s IN ('accepte', 'refuse', 'sans_suite') THEN d.da - interval '20 days'
					WHEN n % 10 BETWEEN 5 AND 6 THEN $3::timestamptz - interval '5 years' ELSE d.da END AS la) l`,
			args: []any{dem, total, now}},
		{sql: `INSERT INTO dossier_history (dossier_id, event, from_state, to_state, instructeur_email, motivation, at)
			SELECT id, 'passer_en_instruction', 'en_construction', 'en_instruction', 'instructeur' || procedure_id || '@prefecture.test',
				'Motivation du dossier ' || id, updated_at
			FROM dossiers WHERE state <> 'en_construction'`},
		{sql: `INSERT INTO email_deliveries (dossier_id, kind, recipient, status, attempts, message_id, created_at, sent_at)
			SELECT id, 'en_instruction', usager_email, 'sent', 1, 'aptflow.bench.' || id || '@aptflow.test', updated_at, updated_at
			FROM dossiers`},
		{sql: `INSERT INTO activities (dossier_id, kind, author, body, at)
			SELECT id, 'message_usager', 'usager', 'Message de l''usager du dossier ' || id, last_activity_at
			FROM dossiers WHERE id % 5 = 0`},
		{sql: `INSERT INTO follows (dossier_id, instructeur_id)
			SELECT d.id, d.procedure_id FROM dossiers d WHERE d.id % 97 < 3`},
		{sql: `INSERT INTO attestations (dossier_id, code, pdf, sha256, rendered_at, created_at)
			SELECT id, md5(id::text), convert_to(repeat(md5(id::text), 128), 'UTF8'), md5(id::text), decided_at, decided_at
			FROM dossiers WHERE state = 'accepte' AND expires_at <= $1`, args: []any{now}},
		{sql: `INSERT INTO idempotency_keys (token_id, key, request_hash, status, content_type, body, dossier_id, created_at)
			SELECT (SELECT id FROM api_tokens), 'bench-' || id, '\x00', 200, 'application/json',
				convert_to('{"id": ' || id || ', "usager_email": "' || usager_email || '"}', 'UTF8'), id, $1::timestamptz - interval '1 hour'
			FROM dossiers WHERE expires_at <= $1`, args: []any{now}},
		{sql: `VACUUM ANALYZE`},
	}
	if again {
		steps = append([]struct {
			sql  string
			args []any
		}{{sql: `TRUNCATE procedures, instructeurs, procedure_instructeurs, dossiers, dossier_history, email_deliveries, activities,
			follows, attestations, idempotency_keys, api_tokens, river_job RESTART IDENTITY CASCADE`}}, steps...)
	}
	for _, q := range steps {
		if _, err := pool.Exec(ctx, q.sql, q.args...); err != nil {
			b.Fatalf("load: %v\n%s", err, q.sql)
		}
	}
}
