package sqlbatch_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/batchenrichtest"
	"github.com/batchenrich/batchenrich/internal/testdb"
	"github.com/batchenrich/batchenrich/sqlbatch"
)

// checkRows checks that traveler_batch_results holds exactly travelers
// 1..n of e1, each with its batch number and validity.
func checkRows(t *testing.T, db *sqlx.DB, n, batchSize int) {
	t.Helper()
	rows := readResults(t, db)
	if len(rows) != n {
		t.Fatalf("%d result rows, want %d", len(rows), n)
	}
	for i, r := range rows {
		id := int64(i + 1)
		wantBatch := (i / batchSize) + 1
		if r.ExecutionID != "e1" || r.TravelerID != id || r.BatchNumber != wantBatch || r.IsValid != (id%10 != 0) {
			t.Fatalf("row %d = %+v, want traveler %d in batch %d", i, r, id, wantBatch)
		}
	}
}

func TestRunnerEndToEnd(t *testing.T) {
	forEachDB(t, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
		createSource(t, db, 95)
		createResults(t, k, db)
		store := checkpointStore(t, db)
		enr := batchenrichtest.NewEnricher(enrich)
		r, err := batchenrich.New(travelerSource(t, db, "e1", sqlbatch.PageByKey), batchenrich.Enricher[Traveler, Enriched](enr), resultsSink(t, db),
			batchenrich.Options{BatchSize: 10, Concurrency: 4, Durable: &batchenrich.Durable{Store: store, RunKey: "e1"}})
		if err != nil {
			t.Fatal(err)
		}
		rep, err := r.Run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if rep.BatchesRun != 10 || rep.Written != 95 || rep.Failed != 9 || !rep.Atomic {
			t.Fatalf("report: %d batches, %d written, %d failed, atomic %v", rep.BatchesRun, rep.Written, rep.Failed, rep.Atomic)
		}
		checkRows(t, db, 95, 10)
		cp, err := store.Load(context.Background(), "e1")
		if err != nil || cp.Batch != 10 || !cp.Done || cp.Cursor != `[95]` {
			t.Fatalf("checkpoint = %+v, %v", cp, err)
		}
		// Run again: already done, nothing read or enriched.
		calls := enr.Calls()
		rep, err = r.Run(context.Background())
		if err != nil || !rep.AlreadyDone || enr.Calls() != calls {
			t.Fatalf("second run: %+v, %v", rep, err)
		}
	})
}

func TestRunnerResumes(t *testing.T) {
	forEachDB(t, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
		createSource(t, db, 95)
		createResults(t, k, db)
		store := checkpointStore(t, db)
		ctx := context.Background()
		opts := batchenrich.Options{BatchSize: 10, Durable: &batchenrich.Durable{Store: store, RunKey: "e1"}}
		run := func(ctx context.Context, enr batchenrich.Enricher[Traveler, Enriched], sink batchenrich.Sink[Traveler, Enriched]) (batchenrich.Report, error) {
			r, err := batchenrich.New(travelerSource(t, db, "e1", sqlbatch.PageByKey), enr, sink, opts)
			if err != nil {
				t.Fatal(err)
			}
			return r.Run(ctx)
		}

		// 1. A sink failing in batch 4 stops the run there; batch 4
		// leaves nothing behind.
		failing, err := sqlbatch.NewSink(db, sqlbatch.SinkConfig[Traveler, Enriched]{
			Table: "traveler_batch_results", Key: []string{"execution_id", "traveler_id"},
			Columns:     []string{"execution_id", "traveler_id", "payload", "is_valid", "validation_error", "processed_at"},
			BatchColumn: "batch_number",
			Row: func(r batchenrich.Result[Traveler, Enriched]) ([]any, error) {
				if r.Item.TravelerID == 35 {
					return nil, errors.New("disk full")
				}
				return []any{r.Item.ExecutionID, r.Item.TravelerID, sqlbatch.JSON[Enriched]{V: r.Value}, r.Err == nil, errText(r.Err), fixedTime}, nil
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		enr := batchenrichtest.NewEnricher(enrich)
		rep, err := run(ctx, enr, failing)
		var be *batchenrich.BatchError
		if !errors.As(err, &be) || be.Batch != 4 || be.Stage != batchenrich.StageWrite {
			t.Fatalf("run with failing sink: %v", err)
		}
		if rep.BatchesRun != 3 {
			t.Fatalf("first run: ran %d batches, want 3", rep.BatchesRun)
		}
		checkRows(t, db, 30, 10)

		// 2. Cancelled during batch 6's enrichment: resumes at 4, stops
		// with batch 5 committed.
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		enr = batchenrichtest.NewEnricher(enrich)
		enr.Started = func(tr Traveler, _ int) {
			if tr.TravelerID == 55 {
				cancel()
			}
		}
		rep, err = run(cctx, enr, resultsSink(t, db))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled run: %v", err)
		}
		if rep.BatchesSkipped != 3 || rep.BatchesRun != 2 {
			t.Fatalf("second run: skipped %d, ran %d; want 3, 2", rep.BatchesSkipped, rep.BatchesRun)
		}
		checkRows(t, db, 50, 10)

		// 3. Run again: continues at batch 6, no duplicates, numbering
		// continues, nothing committed is enriched again.
		enr = batchenrichtest.NewEnricher(enrich)
		rep, err = run(ctx, enr, resultsSink(t, db))
		if err != nil {
			t.Fatal(err)
		}
		if rep.BatchesSkipped != 5 || rep.BatchesRun != 5 || enr.Calls() != 45 || !rep.Atomic {
			t.Fatalf("third run: skipped %d, ran %d, enriched %d, atomic %v; want 5, 5, 45, true", rep.BatchesSkipped, rep.BatchesRun, enr.Calls(), rep.Atomic)
		}
		checkRows(t, db, 95, 10)
	})
}

// A run capped by MaxBatches stops there: running it again with the same
// cap does nothing, and with a larger cap (here none) it goes on to the end.
func TestRunnerCapThenContinue(t *testing.T) {
	forEachDB(t, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
		createSource(t, db, 95)
		createResults(t, k, db)
		store := checkpointStore(t, db)
		for i, tc := range []struct{ cap, ran, rows int }{{3, 3, 30}, {3, 0, 30}, {0, 7, 95}, {0, 0, 95}} {
			r, err := batchenrich.New(travelerSource(t, db, "e1", sqlbatch.PageByKey), batchenrich.EnricherFunc[Traveler, Enriched](enrich), resultsSink(t, db),
				batchenrich.Options{BatchSize: 10, MaxBatches: tc.cap, Durable: &batchenrich.Durable{Store: store, RunKey: "e1"}})
			if err != nil {
				t.Fatal(err)
			}
			rep, err := r.Run(context.Background())
			if err != nil || rep.BatchesRun != tc.ran || rep.AlreadyDone != (tc.ran == 0) {
				t.Fatalf("run %d: ran %d, done %v, %v", i+1, rep.BatchesRun, rep.AlreadyDone, err)
			}
			checkRows(t, db, tc.rows, 10)
		}
	})
}

func errText(err error) any {
	if err == nil {
		return nil
	}
	return err.Error()
}

// With a checkpoint store of another kind, the Runner falls back to
// write-then-save (at-least-once), and still resumes.
func TestRunnerForeignCheckpointStore(t *testing.T) {
	forEachDB(t, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
		createSource(t, db, 25)
		createResults(t, k, db)
		store := batchenrichtest.NewCheckpoints()
		r, err := batchenrich.New(travelerSource(t, db, "e1", sqlbatch.PageByKey), batchenrich.EnricherFunc[Traveler, Enriched](enrich), resultsSink(t, db),
			batchenrich.Options{BatchSize: 10, Durable: &batchenrich.Durable{Store: store, RunKey: "e1"}})
		if err != nil {
			t.Fatal(err)
		}
		rep, err := r.Run(context.Background())
		if err != nil || rep.Atomic || rep.BatchesRun != 3 {
			t.Fatalf("run: %+v, %v", rep, err)
		}
		checkRows(t, db, 25, 10)
	})
}

// Two runners on one key: the second finds the run locked and stops with
// ErrRunLocked, or with LockWait waits and then finds the work done.
func TestRunnerOneRunnerPerKey(t *testing.T) {
	forEachDB(t, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
		createSource(t, db, 25)
		createResults(t, k, db)
		ctx := context.Background()
		started := make(chan struct{})
		release := make(chan struct{})
		var once sync.Once
		enr := batchenrichtest.NewEnricher(enrich)
		enr.Started = func(Traveler, int) {
			once.Do(func() { close(started); <-release })
		}
		newRunner := func(e batchenrich.Enricher[Traveler, Enriched], wait bool) *batchenrich.Runner[Traveler, Enriched] {
			// Each runner has its own store, as in another process.
			r, err := batchenrich.New(travelerSource(t, db, "e1", sqlbatch.PageByKey), e, resultsSink(t, db),
				batchenrich.Options{BatchSize: 10, Concurrency: 1, Durable: &batchenrich.Durable{Store: checkpointStore(t, db), RunKey: "e1", LockWait: wait, LockRetryInterval: 1}})
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		first := newRunner(enr, false)
		done := make(chan error, 1)
		go func() {
			_, err := first.Run(ctx)
			done <- err
		}()
		<-started
		second := batchenrichtest.NewEnricher(enrich)
		if _, err := newRunner(second, false).Run(ctx); !errors.Is(err, batchenrich.ErrRunLocked) {
			t.Fatalf("second runner: err = %v, want ErrRunLocked", err)
		}
		waitErr := make(chan error, 1)
		var waitRep batchenrich.Report
		go func() {
			var err error
			waitRep, err = newRunner(second, true).Run(ctx)
			waitErr <- err
		}()
		close(release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if err := <-waitErr; err != nil {
			t.Fatal(err)
		}
		if !waitRep.AlreadyDone || second.Calls() != 0 {
			t.Fatalf("waiting runner: done %v, enriched %d; want true, 0", waitRep.AlreadyDone, second.Calls())
		}
		checkRows(t, db, 25, 10)
	})
}

// The Runner prefetches the next window while the Sink writes; run a few
// durable runs side by side to let the race detector and SQLite locking
// see reads and writes interleave.
func TestRunnerConcurrentRuns(t *testing.T) {
	forEachDB(t, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
		createSource(t, db, 60)
		for _, e := range []string{"e3", "e4"} {
			insertTravelers(t, db, e, 60)
		}
		createResults(t, k, db)
		store := checkpointStore(t, db)
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for _, e := range []string{"e1", "e2", "e3", "e4"} {
			wg.Go(func() {
				r, err := batchenrich.New(travelerSource(t, db, e, sqlbatch.PageByKey), batchenrich.EnricherFunc[Traveler, Enriched](enrich), resultsSink(t, db),
					batchenrich.Options{BatchSize: 7, Durable: &batchenrich.Durable{Store: store, RunKey: e}})
				if err != nil {
					errs <- err
					return
				}
				if _, err := r.Run(context.Background()); err != nil {
					errs <- fmt.Errorf("%s: %w", e, err)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		var n int
		if err := db.Get(&n, `SELECT count(*) FROM traveler_batch_results`); err != nil || n != 60+30+60+60 {
			t.Fatalf("%d rows, %v; want 210", n, err)
		}
	})
}
