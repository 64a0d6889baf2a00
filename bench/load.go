package main

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aptflow/aptflow/internal/harness"
)

// loadResult is what a load phase did.
type loadResult struct {
	OK, Failed int
	FirstErr   error
	Start      time.Time
	Elapsed    time.Duration // from the first request to the last answer
	// Done[i] is when operation i succeeded (zero if it failed or did not run).
	Done []time.Time
}

// Rate is the successful operations per second.
func (r loadResult) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.OK) / r.Elapsed.Seconds()
}

// recorder collects the outcome of operations run concurrently.
type recorder struct {
	mu  sync.Mutex
	res loadResult
}

func newRecorder(n int) *recorder {
	return &recorder{res: loadResult{Done: make([]time.Time, n), Start: time.Now()}}
}

func (r *recorder) record(i int, err error) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.res.Failed++
		if r.res.FirstErr == nil {
			r.res.FirstErr = err
		}
		return
	}
	r.res.OK++
	r.res.Done[i] = now
	if e := now.Sub(r.res.Start); e > r.res.Elapsed {
		r.res.Elapsed = e
	}
}

func (r *recorder) result() loadResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.res
}

// closedLoop runs op(0), op(1), … op(n-1) with workers concurrent callers,
// each starting its next operation when the previous one answers, until all
// n ran or d passed.
func closedLoop(ctx context.Context, workers, n int, d time.Duration, op func(ctx context.Context, i int) error) loadResult {
	rec := newRecorder(n)
	end := rec.res.Start.Add(d)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(end) {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				rec.record(i, op(ctx, i))
			}
		})
	}
	wg.Wait()
	return rec.result()
}

// openLoop starts op(i) at rate per second for d, whatever the previous
// ones are doing (as independent users would), at most n operations, and
// waits for them all.
func openLoop(ctx context.Context, rate float64, n int, d time.Duration, op func(ctx context.Context, i int) error) loadResult {
	rec := newRecorder(n)
	interval := time.Duration(float64(time.Second) / rate)
	var wg sync.WaitGroup
	for i := 0; i < n && ctx.Err() == nil; i++ {
		at := rec.res.Start.Add(time.Duration(i) * interval)
		if at.Sub(rec.res.Start) >= d {
			break
		}
		if err := harness.Sleep(ctx, time.Until(at)); err != nil {
			break
		}
		wg.Go(func() { rec.record(i, op(ctx, i)) })
	}
	wg.Wait()
	return rec.result()
}

// percentile returns the p-th percentile (0 < p ≤ 100) of ds by the
// nearest-rank method, or 0 for no sample.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := int(p/100*float64(len(s))+0.999999) - 1
	return s[max(0, min(rank, len(s)-1))]
}
