package sqlbatch_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/batchenrichtest"
	"github.com/batchenrich/batchenrich/internal/testdb"
	"github.com/batchenrich/batchenrich/sqlbatch"
)

// The store records a run's state with each checkpoint: its counts
// equal the Sink's rows, a failure is recorded with its error, and a
// stop request stops the run at its next batch boundary, recorded as
// stopped, after which a new run resumes it to the end.
func TestRunStatusFailStopResume(t *testing.T) {
	forEachDB(t, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
		createSource(t, db, 95)
		createResults(t, k, db)
		store := checkpointStore(t, db)
		ctx := context.Background()
		var calls atomic.Int64
		failAt, stopAt := int64(-1), int64(-1)
		enr := batchenrich.EnricherFunc[Traveler, Enriched](func(ctx context.Context, tr Traveler) (Enriched, error) {
			n := calls.Add(1)
			if n == stopAt {
				if _, err := store.RequestStop(ctx, "e1"); err != nil {
					return Enriched{}, batchenrich.Fatal(err)
				}
			}
			if n == failAt {
				return Enriched{}, batchenrich.Fatal(errors.New("secret-free failure at postgres://u:hunter2@h/db"))
			}
			if tr.TravelerID%7 == 0 {
				return Enriched{}, batchenrich.Permanent(errors.New("not found"))
			}
			return enrich(ctx, tr)
		})
		run := func() (batchenrich.Report, error) {
			r, err := batchenrich.New(travelerSource(t, db, "e1", sqlbatch.PageByKey), enr, resultsSink(t, db),
				batchenrich.Options{BatchSize: 10, Concurrency: 1, Durable: &batchenrich.Durable{Store: store, RunKey: "e1", Job: "travelers"}})
			if err != nil {
				t.Fatal(err)
			}
			return r.Run(ctx)
		}
		rows := func() int {
			var n int
			if err := db.Get(&n, `SELECT count(*) FROM traveler_batch_results`); err != nil {
				t.Fatal(err)
			}
			return n
		}

		// A Fatal error in batch 3: the run fails after batch 2.
		failAt = 25
		if _, err := run(); err == nil {
			t.Fatal("the run did not fail")
		}
		st, err := store.Status(ctx, "e1")
		if err != nil {
			t.Fatal(err)
		}
		p := st.Partitions[0]
		if st.State != batchenrich.StateFailed || st.Job != "travelers" || p.Batch != 2 || st.Counts.Written != rows() || st.Counts.Batches != 2 ||
			!strings.Contains(st.LastError, "secret-free failure") || strings.Contains(st.LastError, "hunter2") || st.Finished.IsZero() || st.Started.IsZero() ||
			p.PID == 0 || p.Held {
			t.Fatalf("after a failure: %+v", st)
		}

		// A stop request during batch 4 (of this run's 2nd batch): the
		// run commits it and stops.
		calls.Store(0)
		failAt, stopAt = -1, 15
		_, err = run()
		if !errors.Is(err, batchenrich.ErrStopRequested) {
			t.Fatalf("stopped run: err = %v", err)
		}
		st, err = store.Status(ctx, "e1")
		if err != nil {
			t.Fatal(err)
		}
		if st.State != batchenrich.StateStopped || st.Partitions[0].Batch != 4 || st.Counts.Written != rows() || st.Partitions[0].StopRequested {
			t.Fatalf("after a stop: %+v", st)
		}

		// Resumed, it runs to the end.
		stopAt = -1
		if _, err := run(); err != nil {
			t.Fatal(err)
		}
		st, err = store.Status(ctx, "e1")
		if err != nil {
			t.Fatal(err)
		}
		c := st.Counts
		var invalid int
		if err := db.Get(&invalid, `SELECT count(*) FROM traveler_batch_results WHERE NOT is_valid`); err != nil {
			t.Fatal(err)
		}
		if st.State != batchenrich.StateDone || rows() != 95 || c.Written != 95 || c.Read != 95 || c.Batches != 10 ||
			c.Failed != invalid || c.FailedPermanent < 13 || c.Enriched != 95-invalid || st.Finished.IsZero() {
			t.Fatalf("after the end: %+v", st)
		}
		runs, err := store.Runs(ctx, sqlbatch.RunFilter{Job: "travelers"})
		if err != nil || len(runs) != 1 || runs[0].RunKey != "e1" {
			t.Fatalf("Runs = %+v, %v", runs, err)
		}
		if runs, err := store.Runs(ctx, sqlbatch.RunFilter{Job: "other"}); err != nil || len(runs) != 0 {
			t.Fatalf("Runs of another job = %+v, %v", runs, err)
		}
		if _, err := store.Status(ctx, "nope"); !errors.Is(err, batchenrich.ErrUnknownRun) {
			t.Fatalf("Status of an unknown run: %v", err)
		}
		if n, err := store.RequestStop(ctx, "e1"); err != nil || n != 0 {
			t.Fatalf("RequestStop of a finished run = %d, %v", n, err)
		}
	})
}

// A partitioned run's status has one entry per partition, and sums them.
func TestRunStatusPartitioned(t *testing.T) {
	forEachDB(t, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
		createSource(t, db, 60)
		createResults(t, k, db)
		store := checkpointStore(t, db)
		ctx := context.Background()
		pr, err := batchenrich.NewPartitioned(3, func(p batchenrich.Partition) (batchenrich.Source[Traveler], error) {
			return sqlbatch.NewSource[Traveler](db, sqlbatch.SourceConfig{Table: "traveler_batch_source", Key: []string{"traveler_id"},
				Filter: map[string]any{"execution_id": "e1"}, Partition: p})
		}, batchenrichtest.NewEnricher(enrich), func(batchenrich.Partition) (batchenrich.Sink[Traveler, Enriched], error) {
			return resultsSink(t, db), nil
		}, batchenrich.Options{BatchSize: 10, Durable: &batchenrich.Durable{Store: store, RunKey: "e1", Job: "travelers"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pr.Run(ctx); err != nil {
			t.Fatal(err)
		}
		st, err := store.Status(ctx, "e1")
		if err != nil {
			t.Fatal(err)
		}
		if st.State != batchenrich.StateDone || len(st.Partitions) != 3 || st.Counts.Written != 60 || st.Job != "travelers" {
			t.Fatalf("status = %+v", st)
		}
		for i, p := range st.Partitions {
			if p.Index != i || p.Count != 3 || p.State != batchenrich.StateDone || p.RunKey != (batchenrich.Partition{Index: i, Count: 3}).RunKey("e1") {
				t.Fatalf("partition %d = %+v", i, p)
			}
		}
		runs, err := store.Runs(ctx, sqlbatch.RunFilter{})
		if err != nil || len(runs) != 1 || len(runs[0].Partitions) != 3 {
			t.Fatalf("Runs = %+v, %v", runs, err)
		}
		// A partition asked for by its own key is that partition alone,
		// not a run of three partitions of its own.
		key := (batchenrich.Partition{Index: 2, Count: 3}).RunKey("e1")
		ps, err := store.Status(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		want := st.Partitions[2]
		if ps.RunKey != key || len(ps.Partitions) != 1 || ps.State != batchenrich.StateDone || ps.Counts != want.Counts ||
			ps.Partitions[0].Index != 2 || ps.Partitions[0].Count != 3 || ps.Partitions[0].RunKey != key || ps.Partitions[0].Counts != want.Counts {
			t.Fatalf("status of %s = %+v, want partition %+v alone", key, ps, want)
		}
	})
}
