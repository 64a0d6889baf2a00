package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aptflow/aptflow/internal/harness"
	"github.com/aptflow/aptflow/jobs"
	"github.com/aptflow/aptflow/workflow"
)

// bench runs the phases, one after the other, each on an idle system.
type bench struct {
	o   options
	log io.Writer
	s   *stack
	// ceilingRest are seeded dossiers for the second ceiling measure.
	ceilingRest []dossier
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "bench: "+format+"\n", args...)
}

// phaseTimeout bounds the wait for a phase's e-mails after its load ends.
const phaseTimeout = 2 * time.Minute

// run measures everything and returns the report, partial if a phase
// failed: a failed phase is noted in the report and the others still run.
func (b *bench) run(ctx context.Context) (*report, error) {
	rep := &report{Command: b.o.command, Clients: b.o.clients, Started: time.Now(), HeavyRateSet: b.o.heavyRate != 0}
	rep.Revision = revision()
	s, m, err := startMeasured(ctx, b.o, b.logf)
	if err != nil {
		return nil, err
	}
	defer s.close()
	b.s, rep.Machine = s, m
	if err := s.setup(ctx); err != nil {
		return nil, fmt.Errorf("setup through the API: %w", err)
	}

	phases := []struct {
		key, name string
		fn        func(context.Context, *report) error
	}{
		{"ceiling", "SQL ceiling", b.ceiling},
		{"transitions", "HTTP transitions", b.transitions},
		{"stages", "stages alone", b.stages},
		{"acceptances", "acceptances end to end", b.acceptances},
		{"latency", "e-mail latency", b.latencies},
		{"webhooks", "webhooks", b.webhooks},
	}
	for _, p := range phases {
		if ctx.Err() != nil {
			break
		}
		if b.o.phases != "" && !slices.Contains(strings.Split(b.o.phases, ","), p.key) {
			continue
		}
		b.logf("phase: %s", p.name)
		if err := p.fn(ctx, rep); err != nil {
			b.logf("phase %s: %v", p.name, err)
			rep.Notes = append(rep.Notes, fmt.Sprintf("%s: %v", p.name, err))
		}
		if err := s.quiesce(ctx, phaseTimeout); err != nil {
			rep.Notes = append(rep.Notes, fmt.Sprintf("after %s: %v", p.name, err))
		}
	}
	if rep.RSS, err = s.vmHWM(); err != nil {
		rep.Notes = append(rep.Notes, "peak RSS: "+err.Error())
	}
	rep.Elapsed = time.Since(rep.Started)
	rep.Machine.LoadAfter = harness.LoadAverage()
	return rep, ctx.Err()
}

// ceiling measures the SQL of a transition without the API, as River sends
// it (one insert notification per FetchCooldown) and, for reference, with
// a pg_notify in every transaction. The transitions phase measures the
// ceiling a second time, after its bursts (ceilingAgain): the same SQL
// varied by a quarter from one minute to the next on the shared machine,
// and the ratio divides by it.
func (b *bench) ceiling(ctx context.Context, rep *report) error {
	ds, err := b.s.seed(ctx, 100_000, "ceiling", string(workflow.EnConstruction))
	if err != nil {
		return err
	}
	b.ceilingRest = ds[60_000:]
	cpu := b.s.startCPU(ctx)
	rep.Ceiling = sqlCeiling(ctx, b.s, ds[:40_000], b.o.clients, b.o.duration, b.fetchCooldown())
	rep.CPU = append(rep.CPU, namedCPU{"SQL ceiling, per transition", cpu.stop(rep.Ceiling.OK)})
	rep.CeilingNotifyAll = sqlCeiling(ctx, b.s, ds[40_000:60_000], b.o.clients, b.o.duration/2, 0)
	if rep.Ceiling.FirstErr != nil {
		return rep.Ceiling.FirstErr
	}
	_, err = b.s.pool.Exec(ctx, `DELETE FROM river_job WHERE queue = $1`, ceilingQueue)
	return err
}

// ceilingAgain measures the ceiling a second time, on an idle system.
func (b *bench) ceilingAgain(ctx context.Context, rep *report) error {
	if b.ceilingRest == nil {
		return nil // the ceiling phase did not run
	}
	if err := b.s.quiesce(ctx, phaseTimeout); err != nil {
		return err
	}
	rep.Ceiling2 = sqlCeiling(ctx, b.s, b.ceilingRest, b.o.clients, b.o.duration, b.fetchCooldown())
	if rep.Ceiling2.FirstErr != nil {
		return rep.Ceiling2.FirstErr
	}
	_, err := b.s.pool.Exec(ctx, `DELETE FROM river_job WHERE queue = $1`, ceilingQueue)
	return err
}

// fetchCooldown is the FetchCooldown of aptflow's River client, which
// spaces its insert notifications.
func (b *bench) fetchCooldown() time.Duration {
	var jc jobs.Config
	jc.Defaults()
	return jc.FetchCooldown
}

// transitions drives passer_en_instruction through the API with the
// clients, then waits for their e-mails: the e-mail rate end to end is the
// maximum the latency phase takes 80 % of.
func (b *bench) transitions(ctx context.Context, rep *report) error {
	ds, err := b.s.seed(ctx, 40_000, "transition", string(workflow.EnConstruction))
	if err != nil {
		return err
	}
	stopProfile := b.profile(ctx, "transitions", b.o.duration)
	cpu := b.s.startCPU(ctx)
	rep.HTTP = closedLoop(ctx, b.o.clients, len(ds), b.o.duration, func(ctx context.Context, i int) error {
		return b.event(ctx, ds[i].ID, workflow.PasserEnInstruction)
	})
	stopProfile()
	if rep.HTTP.FirstErr != nil {
		return fmt.Errorf("%d transitions failed: %w", rep.HTTP.Failed, rep.HTTP.FirstErr)
	}
	all, n, err := waitMail(ctx, b.s, rep.HTTP.OK, phaseTimeout)
	rep.CPU = append(rep.CPU, namedCPU{"HTTP transitions, per transition and its e-mail", cpu.stop(n)})
	rep.HTTPMailRate = float64(n) / all.Sub(rep.HTTP.Start).Seconds()
	if err != nil {
		return err
	}

	// The same with the e-mail queue paused during the burst, the e-mails
	// going out after: the API's own cost, compared with the ceiling's, whose
	// jobs no worker reads either (report.table says why).
	if err := b.s.quiesce(ctx, phaseTimeout); err != nil {
		return err
	}
	rest := ds[min(len(ds), rep.HTTP.OK+rep.HTTP.Failed):]
	if err := b.s.pauseQueue(ctx, "email", true); err != nil {
		return fmt.Errorf("pause the e-mail queue: %w", err)
	}
	cpu = b.s.startCPU(ctx)
	rep.HTTPPaused = closedLoop(ctx, b.o.clients, len(rest), b.o.duration, func(ctx context.Context, i int) error {
		return b.event(ctx, rest[i].ID, workflow.PasserEnInstruction)
	})
	rep.CPU = append(rep.CPU, namedCPU{"HTTP transitions, e-mail queue paused, per transition", cpu.stop(rep.HTTPPaused.OK)})
	if err := b.s.pauseQueue(ctx, "email", false); err != nil {
		return fmt.Errorf("resume the e-mail queue: %w", err)
	}
	if rep.HTTPPaused.FirstErr != nil {
		return fmt.Errorf("%d transitions failed: %w", rep.HTTPPaused.Failed, rep.HTTPPaused.FirstErr)
	}
	if _, _, err = waitMail(ctx, b.s, rep.HTTPPaused.OK, phaseTimeout); err != nil {
		return err
	}
	return b.ceilingAgain(ctx, rep)
}

// stages measures the two stages of an acceptance alone.
func (b *bench) stages(ctx context.Context, rep *report) error {
	var err error
	var n int
	cpu := b.s.startCPU(ctx)
	if rep.RenderRate, rep.RenderWorkers, n, err = renderStage(ctx, b.o.stage, b.s.apiURL); err != nil {
		return fmt.Errorf("render: %w", err)
	}
	rep.RenderCPU = cpu.stop(n)
	rep.CPU = append(rep.CPU, namedCPU{"PDF renders alone, per render (the bench renders)", rep.RenderCPU})
	cpu = b.s.startCPU(ctx)
	if rep.IngestRate, rep.IngestWorkers, n, err = ingestStage(ctx, b.s, b.o.stage); err != nil {
		return fmt.Errorf("mailpit ingest: %w", err)
	}
	rep.IngestCPU = cpu.stop(n)
	rep.CPU = append(rep.CPU, namedCPU{"mailpit ingest alone, per message (the bench is the sender)", rep.IngestCPU})
	return nil
}

// acceptances accepts dossiers through the API as fast as the clients go,
// and measures until mailpit holds every acceptance e-mail.
func (b *bench) acceptances(ctx context.Context, rep *report) error {
	ds, err := b.s.seed(ctx, b.o.accept, "acceptation", string(workflow.EnInstruction))
	if err != nil {
		return err
	}
	stopProfile := b.profile(ctx, "acceptances", b.o.duration)
	cpu := b.s.startCPU(ctx)
	rep.AcceptHTTP = closedLoop(ctx, b.o.clients, len(ds), phaseTimeout, func(ctx context.Context, i int) error {
		return b.event(ctx, ds[i].ID, workflow.Accepter)
	})
	if rep.AcceptHTTP.FirstErr != nil {
		stopProfile()
		return fmt.Errorf("%d acceptances failed: %w", rep.AcceptHTTP.Failed, rep.AcceptHTTP.FirstErr)
	}
	all, n, err := waitMail(ctx, b.s, rep.AcceptHTTP.OK, phaseTimeout)
	rep.AcceptCPU = cpu.stop(n)
	rep.CPU = append(rep.CPU, namedCPU{"acceptances end to end, per acceptance", rep.AcceptCPU})
	stopProfile()
	rep.AcceptN = n
	rep.AcceptRate = float64(n) / all.Sub(rep.AcceptHTTP.Start).Seconds()
	return err
}

// latencies measures the e-mail latency at light load, then at 80 % of the
// e-mail rate the transitions phase reached.
func (b *bench) latencies(ctx context.Context, rep *report) error {
	var err error
	if rep.Light, err = b.latency(ctx, b.o.lightRate, "light"); err != nil {
		return fmt.Errorf("at %.0f/s: %w", b.o.lightRate, err)
	}
	rate := b.o.heavyRate
	if rate == 0 {
		rate = 0.8 * rep.HTTPMailRate
	}
	if rate == 0 {
		return fmt.Errorf("no maximum e-mail rate measured: no latency at 80 %%")
	}
	if err := b.s.quiesce(ctx, phaseTimeout); err != nil {
		return err
	}
	if rep.Heavy, err = b.latency(ctx, rate, "heavy"); err != nil {
		return fmt.Errorf("at %.0f/s: %w", rate, err)
	}
	return nil
}

// latency runs passer_en_instruction at rate for the latency duration and
// returns, for each e-mail, the time from the HTTP 200 to mailpit's Created.
func (b *bench) latency(ctx context.Context, rate float64, tag string) (latencyResult, error) {
	n := int(rate*b.o.latency.Seconds()) + 1
	ds, err := b.s.seed(ctx, n, tag, string(workflow.EnConstruction))
	if err != nil {
		return latencyResult{}, err
	}
	res := openLoop(ctx, rate, n, b.o.latency, func(ctx context.Context, i int) error {
		return b.event(ctx, ds[i].ID, workflow.PasserEnInstruction)
	})
	lr := latencyResult{Rate: rate}
	if res.FirstErr != nil {
		return lr, fmt.Errorf("%d transitions failed: %w", res.Failed, res.FirstErr)
	}
	if _, _, err := waitMail(ctx, b.s, res.OK, phaseTimeout); err != nil {
		return lr, err
	}
	msgs, err := b.s.mp.Messages(ctx)
	if err != nil {
		return lr, err
	}
	created := make(map[string]time.Time, len(msgs))
	for _, m := range msgs {
		for _, to := range m.To {
			created[to.Address] = m.Created
		}
	}
	for i, d := range ds {
		if res.Done[i].IsZero() {
			continue
		}
		if c, ok := created[d.Usager]; ok {
			lr.Samples = append(lr.Samples, c.Sub(res.Done[i]))
		}
	}
	if len(lr.Samples) != res.OK {
		return lr, fmt.Errorf("%d e-mails matched of %d transitions", len(lr.Samples), res.OK)
	}
	return lr, nil
}

// event posts an instructeur's event, e-mail included, and wants a 200.
func (b *bench) event(ctx context.Context, id int64, event workflow.Event) error {
	body := map[string]any{"event": event, "instructeur": b.s.instructeur, "disable_notification": false}
	if event == workflow.Accepter {
		body["motivation"] = "Dossier complet."
	}
	return b.s.api.Call(ctx, http.StatusOK, http.MethodPost, "/v1/dossiers/"+strconv.FormatInt(id, 10)+"/events", body, nil)
}

// profile saves a CPU profile of aptflow over the next d into the -pprof
// directory, if one was given; the returned function waits for it.
func (b *bench) profile(ctx context.Context, name string, d time.Duration) (wait func()) {
	if b.o.profileDir == "" {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		secs := max(1, int(d.Seconds()))
		var body []byte
		err := b.s.api.Call(ctx, http.StatusOK, http.MethodGet, "/debug/pprof/profile?seconds="+strconv.Itoa(secs), nil, &body)
		if err == nil {
			if err = os.MkdirAll(b.o.profileDir, 0o755); err == nil {
				err = os.WriteFile(filepath.Join(b.o.profileDir, name+".pprof"), body, 0o644)
			}
		}
		if err != nil {
			b.logf("CPU profile %s: %v", name, err)
			return
		}
		b.logf("CPU profile of aptflow during %s: %s", name, filepath.Join(b.o.profileDir, name+".pprof"))
	}()
	return func() { <-done }
}
