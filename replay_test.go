package batchenrich_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/batchenrichtest"
)

// stored is an in-memory results table for replay tests: item → its row.
type stored struct {
	mu   sync.Mutex
	rows map[item]storedRow
}

type storedRow struct {
	batch int               // the batch number the row was stored with
	class batchenrich.Class // Unclassified when the item succeeded
	value int               // the enrichment, when it succeeded
	err   string            // the failure's text
}

// failedSource reads the items stored as failed (transient ones unless all), in item
// order, paging by the last item read (keyset), as sqlbatch's does.
func (s *stored) failedSource(all bool) batchenrich.Source[item] {
	return batchenrich.SourceFunc[item](func(ctx context.Context, after batchenrich.Cursor, limit int) ([]item, batchenrich.Cursor, error) {
		last := -1
		if after != "" {
			n, err := strconv.Atoi(string(after))
			if err != nil {
				return nil, after, err
			}
			last = n
		}
		s.mu.Lock()
		var out []item
		for it, r := range s.rows {
			if int(it) > last && r.err != "" && (all || r.class == batchenrich.ClassTransient) {
				out = append(out, it)
			}
		}
		s.mu.Unlock()
		slices.Sort(out)
		if len(out) > limit {
			out = out[:limit]
		}
		if len(out) == 0 {
			return nil, after, nil
		}
		return out, batchenrich.Cursor(strconv.Itoa(int(out[len(out)-1]))), nil
	})
}

// sink upserts results by item; in a replay it keeps the stored batch
// number, and checks that a replay batch says which replay it is from.
func (s *stored) sink(t *testing.T, wantReplay int) batchenrich.Sink[item, int] {
	return batchenrich.SinkFunc[item, int](func(ctx context.Context, b batchenrich.Batch[item, int]) error {
		if b.Replay != wantReplay {
			t.Errorf("batch %d: Replay = %d, want %d", b.Number, b.Replay, wantReplay)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, r := range b.Results {
			row := storedRow{batch: b.Number, value: r.Value}
			if b.Replay > 0 {
				old, ok := s.rows[r.Item]
				if !ok {
					return fmt.Errorf("replay of %v, which has no row", r.Item)
				}
				row.batch = old.batch
			}
			if r.Err != nil {
				row.class, row.err = batchenrich.Classify(r.Err), r.Err.Error()
			}
			s.rows[r.Item] = row
		}
		return nil
	})
}

func (s *stored) failed(all bool) []item {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []item
	for it, r := range s.rows {
		if r.err != "" && (all || r.class == batchenrich.ClassTransient) {
			out = append(out, it)
		}
	}
	slices.Sort(out)
	return out
}

// outage fails every 5th item transiently and every 17th permanently
// while down is set.
type outage struct{ down bool }

func (o *outage) enrich(_ context.Context, i item) (int, error) {
	switch {
	case o.down && i%17 == 0:
		return 0, batchenrich.Permanent(errors.New("not found"))
	case o.down && i%5 == 0:
		return 0, batchenrich.Transient(errors.New("503"))
	}
	return 2 * int(i), nil
}

// runWithFailures runs 100 items in batches of 10 against the outage and
// returns the store holding the results.
func runWithFailures(t *testing.T, cps *batchenrichtest.Checkpoints) (*stored, *outage) {
	t.Helper()
	st := &stored{rows: map[item]storedRow{}}
	o := &outage{down: true}
	r, err := batchenrich.New(batchenrichtest.NewSliceSource(items(100)), batchenrich.EnricherFunc[item, int](o.enrich), st.sink(t, 0),
		batchenrich.Options{BatchSize: 10, Concurrency: 4, Durable: &batchenrich.Durable{Store: cps, RunKey: "run"}})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := r.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Items 0..99: multiples of 17 (6) are permanent, other multiples of
	// 5 (20 - 2 shared with 17: 0 and 85) are transient.
	if rep.Failed != 24 || len(st.failed(false)) != 18 {
		t.Fatalf("run: %d failed, %d transient", rep.Failed, len(st.failed(false)))
	}
	return st, o
}

func TestReplayRetriesTransientFailuresOnly(t *testing.T) {
	t.Parallel()
	cps := batchenrichtest.NewCheckpoints()
	st, o := runWithFailures(t, cps)
	o.down = false
	transient := st.failed(false)
	before := map[item]int{}
	for it, r := range st.rows {
		before[it] = r.batch
	}

	var calls []item
	var mu sync.Mutex
	enr := batchenrich.EnricherFunc[item, int](func(ctx context.Context, i item) (int, error) {
		mu.Lock()
		calls = append(calls, i)
		mu.Unlock()
		return o.enrich(ctx, i)
	})
	p, err := batchenrich.NewReplay(st.failedSource(false), enr, st.sink(t, 1),
		batchenrich.Options{BatchSize: 4, Concurrency: 3, Durable: &batchenrich.Durable{Store: cps, RunKey: "run"}})
	if err != nil {
		t.Fatal(err)
	}
	rr, err := p.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(calls)
	if !slices.Equal(calls, transient) {
		t.Fatalf("replay enriched %v, want the transient failures %v", calls, transient)
	}
	if rr.Number != 1 || rr.ReplayKey != "run#replay-1" || rr.NothingToReplay || rr.Written != 18 || rr.Enriched != 18 || rr.Failed != 0 || rr.BatchesRun != 5 {
		t.Fatalf("report: %+v", rr)
	}
	if got := st.failed(true); len(got) != 6 {
		t.Fatalf("after the replay, failed: %v; want the 6 permanent ones", got)
	}
	for it, r := range st.rows {
		if r.batch != before[it] {
			t.Fatalf("item %v: batch %d after the replay, was %d", it, r.batch, before[it])
		}
	}
	if cp, _ := cps.Load(context.Background(), "run#replay-1"); !cp.Done {
		t.Fatalf("replay checkpoint %+v, want done", cp)
	}

	// Nothing transient is left: a second replay does nothing, and saves
	// no checkpoint for itself.
	calls = nil
	rr, err = p.Run(context.Background())
	if err != nil || !rr.NothingToReplay || rr.Number != 2 || len(calls) != 0 {
		t.Fatalf("second replay: %+v, %v, calls %v", rr, err, calls)
	}
	if cp, _ := cps.Load(context.Background(), "run#replay-2"); cp.Batch != 0 || cp.Done {
		t.Fatalf("empty replay saved checkpoint %+v", cp)
	}

	// With all classes the permanent ones are retried (by replay 2).
	p, err = batchenrich.NewReplay(st.failedSource(true), enr, st.sink(t, 2),
		batchenrich.Options{BatchSize: 4, Durable: &batchenrich.Durable{Store: cps, RunKey: "run"}})
	if err != nil {
		t.Fatal(err)
	}
	rr, err = p.Run(context.Background())
	if err != nil || rr.Number != 2 || rr.Written != 6 || len(calls) != 6 || len(st.failed(true)) != 0 {
		t.Fatalf("replay of all: %+v, %v, calls %v", rr, err, calls)
	}
}

// A replay during an outage that goes on stops at its first batch whose
// every item fails again (the all-failed stop), leaving the stored failures
// as they were; once the cause is fixed, the same replay goes on.
func TestReplayStopsWhileTheOutageLasts(t *testing.T) {
	t.Parallel()
	cps := batchenrichtest.NewCheckpoints()
	st, o := runWithFailures(t, cps)
	p, err := batchenrich.NewReplay(st.failedSource(false), batchenrich.EnricherFunc[item, int](o.enrich), st.sink(t, 1),
		batchenrich.Options{BatchSize: 5, Durable: &batchenrich.Durable{Store: cps, RunKey: "run"}})
	if err != nil {
		t.Fatal(err)
	}
	rr, err := p.Run(context.Background())
	if !errors.Is(err, batchenrich.ErrAllFailed) || rr.Number != 1 || rr.Written != 0 {
		t.Fatalf("replay during the outage: %+v, %v", rr, err)
	}
	if got := st.failed(false); len(got) != 18 {
		t.Fatalf("transient failures after the stopped replay: %v", got)
	}
	o.down = false
	rr, err = p.Run(context.Background())
	if err != nil || rr.Number != 1 || rr.Written != 18 || len(st.failed(false)) != 0 {
		t.Fatalf("replay after the outage: %+v, %v", rr, err)
	}
}

func TestReplayResumesAfterInterruption(t *testing.T) {
	t.Parallel()
	cps := batchenrichtest.NewCheckpoints()
	st, o := runWithFailures(t, cps)
	o.down = false
	calls := map[item]int{}
	var mu sync.Mutex
	replay := func(ctx context.Context, cancelAt item, cancel func()) (batchenrich.ReplayReport, error) {
		enr := batchenrich.EnricherFunc[item, int](func(ctx context.Context, i item) (int, error) {
			mu.Lock()
			calls[i]++
			mu.Unlock()
			if i == cancelAt {
				cancel()
				<-ctx.Done()
				return 0, ctx.Err()
			}
			return o.enrich(ctx, i)
		})
		p, err := batchenrich.NewReplay(st.failedSource(false), enr, st.sink(t, 1),
			batchenrich.Options{BatchSize: 4, Concurrency: 1, Durable: &batchenrich.Durable{Store: cps, RunKey: "run"}})
		if err != nil {
			t.Fatal(err)
		}
		return p.Run(ctx)
	}
	// Transient failures: 5 10 15 20 | 25 30 35 40 | … ; interrupt the
	// second batch.
	ctx, cancel := context.WithCancel(context.Background())
	rr, err := replay(ctx, 30, cancel)
	cancel()
	if !errors.Is(err, context.Canceled) || rr.Number != 1 || rr.BatchesRun != 1 {
		t.Fatalf("interrupted replay: %+v, %v", rr, err)
	}
	rr, err = replay(context.Background(), -1, func() {})
	if err != nil || rr.Number != 1 || rr.BatchesSkipped != 1 || rr.Written != 14 {
		t.Fatalf("resumed replay: %+v, %v", rr, err)
	}
	if got := st.failed(false); len(got) != 0 {
		t.Fatalf("still failed: %v", got)
	}
	for it, n := range calls {
		// The interrupted batch's items may have been tried twice; no
		// other.
		if n > 1 && (it < 25 || it > 40) {
			t.Fatalf("item %v enriched %d times", it, n)
		}
	}
}

func TestReplayExcludesTheRunAndOtherReplays(t *testing.T) {
	t.Parallel()
	cps := batchenrichtest.NewCheckpoints()
	st, _ := runWithFailures(t, cps)
	unlock, ok, err := cps.TryLock(context.Background(), "run")
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	defer unlock()
	p, err := batchenrich.NewReplay(st.failedSource(false),
		batchenrich.EnricherFunc[item, int](double), st.sink(t, 1),
		batchenrich.Options{Durable: &batchenrich.Durable{Store: cps, RunKey: "run"}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Run(context.Background())
	if !errors.Is(err, batchenrich.ErrRunLocked) {
		t.Fatalf("replay of a locked run: %v", err)
	}
	if got := err.Error(); !strings.HasPrefix(got, `batchenrich: run "run": lock: run key is locked by another runner (the run or a replay of it is running;`) {
		t.Fatalf("error text: %s", got)
	}
}

// checkedSink is a Sink whose Check fails.
type checkedSink struct{ batchenrich.Sink[item, int] }

func (checkedSink) Check(context.Context) error { return errors.New("no such table") }

func TestReplayChecksBeforeWork(t *testing.T) {
	t.Parallel()
	cps := batchenrichtest.NewCheckpoints()
	st, _ := runWithFailures(t, cps)
	enr := batchenrichtest.NewEnricher(double)
	p, err := batchenrich.NewReplay(st.failedSource(false), batchenrich.Enricher[item, int](enr),
		checkedSink{st.sink(t, 1)}, batchenrich.Options{Durable: &batchenrich.Durable{Store: cps, RunKey: "run"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Run(context.Background()); err == nil || err.Error() != "no such table" || enr.Calls() != 0 {
		t.Fatalf("replay with a failing Check: %v, %d calls", err, enr.Calls())
	}
	if cp, _ := cps.Load(context.Background(), "run#replay-1"); cp.Batch != 0 || cp.Done {
		t.Fatalf("checkpoint saved: %+v", cp)
	}
}

// countingSource is a Source that counts the calls to its Check.
type countingSource struct {
	batchenrich.Source[item]
	checks atomic.Int32
}

func (c *countingSource) Check(context.Context) error { c.checks.Add(1); return nil }

// A replay runs its components' Checks once, before the run's lock, and
// not again in the replay's own run.
func TestReplayChecksOnce(t *testing.T) {
	t.Parallel()
	cps := batchenrichtest.NewCheckpoints()
	st, o := runWithFailures(t, cps)
	o.down = false
	src := &countingSource{Source: st.failedSource(false)}
	p, err := batchenrich.NewReplay[item, int](src, batchenrich.EnricherFunc[item, int](o.enrich), st.sink(t, 1),
		batchenrich.Options{BatchSize: 4, Durable: &batchenrich.Durable{Store: cps, RunKey: "run"}})
	if err != nil {
		t.Fatal(err)
	}
	if rr, err := p.Run(context.Background()); err != nil || rr.Written != 18 {
		t.Fatalf("replay: %+v, %v", rr, err)
	}
	if n := src.checks.Load(); n != 1 {
		t.Fatalf("Check called %d times, want 1", n)
	}
}

func TestNewReplayRefusesBadOptions(t *testing.T) {
	t.Parallel()
	src := batchenrichtest.NewSliceSource(items(1))
	enr := batchenrich.EnricherFunc[item, int](double)
	sink := batchenrichtest.NewSink[item, int]()
	for _, c := range []struct {
		opts  batchenrich.Options
		src   batchenrich.Source[item]
		field string
	}{
		{batchenrich.Options{}, src, "Durable"},
		{batchenrich.Options{Durable: &batchenrich.Durable{Store: batchenrichtest.NewCheckpoints()}}, src, "Durable.RunKey"},
		{batchenrich.Options{Durable: &batchenrich.Durable{Store: batchenrichtest.NewCheckpoints(), RunKey: "k"}}, nil, "failed"},
		{batchenrich.Options{Durable: &batchenrich.Durable{Store: batchenrichtest.NewCheckpoints(), RunKey: "k"}, BatchSize: -1}, src, "BatchSize"},
		{batchenrich.Options{Durable: &batchenrich.Durable{Store: batchenrichtest.NewCheckpoints(), RunKey: "k"}, Partition: batchenrich.Partition{Index: 1, Count: 4}}, src, "Partition"},
	} {
		_, err := batchenrich.NewReplay(c.src, enr, sink, c.opts)
		var oe *batchenrich.ConfigError
		if !errors.As(err, &oe) || oe.Package != "batchenrich" || oe.Field != c.field || !errors.Is(err, batchenrich.ErrInvalidConfig) {
			t.Errorf("NewReplay(%+v) = %v, want an error naming %s", c.opts, err, c.field)
		}
	}
}
