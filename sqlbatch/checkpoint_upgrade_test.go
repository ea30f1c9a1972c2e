package sqlbatch_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/batchenrichtest"
	"github.com/batchenrich/batchenrich/internal/testdb"
	"github.com/batchenrich/batchenrich/sqlbatch"
)

// A checkpoint table created by the first release (no batch_size, no
// fingerprint) keeps working: its rows load, and the first Load adds the
// columns, with no manual migration.
func TestCheckpointTableUpgrade(t *testing.T) {
	forEachDB(t, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
		ctx := context.Background()
		mustExec(t, db, ddl(k, `CREATE TABLE batchenrich_checkpoints (
			run_key TEXT PRIMARY KEY, batch BIGINT NOT NULL, "cursor" TEXT NOT NULL,
			done BOOLEAN NOT NULL, updated_at TIMESTAMPTZ NOT NULL,
			lock_owner TEXT, lock_expires_at BIGINT)`))
		mustExec(t, db, rebind(db, `INSERT INTO batchenrich_checkpoints (run_key, batch, "cursor", done, updated_at) VALUES (?, 3, 'c3', false, ?)`), "old", fixedTime)

		// A store that never calls CreateTable, as a process started
		// before the upgrade would.
		s, err := sqlbatch.NewCheckpointStore(db, sqlbatch.CheckpointConfig{})
		if err != nil {
			t.Fatal(err)
		}
		cp, err := s.Load(ctx, "old")
		if err != nil {
			t.Fatalf("Load from an old table: %v", err)
		}
		if want := (batchenrich.Checkpoint{RunKey: "old", Batch: 3, Cursor: "c3"}); cp != want {
			t.Fatalf("Load = %+v, want %+v", cp, want)
		}
		want := batchenrich.Checkpoint{RunKey: "old", Batch: 4, Cursor: "c4", BatchSize: 10, Fingerprint: "v2"}
		if err := s.Save(ctx, want); err != nil {
			t.Fatal(err)
		}
		// Another store (another process) sees the columns, and
		// CreateTable on the upgraded table is a no-op.
		s2 := checkpointStore(t, db)
		if got, err := s2.Load(ctx, "old"); err != nil || got != want {
			t.Fatalf("Load after upgrade = %+v, %v; want %+v", got, err, want)
		}
	})
}

// A run resuming a checkpoint recorded with another batch size is refused
// before anything is read, saying what differs and what to do; with
// AllowReshape it goes on, and the checkpoint records the new size.
func TestRunnerRefusesOtherBatchSize(t *testing.T) {
	forEachDB(t, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
		createSource(t, db, 95)
		createResults(t, k, db)
		store := checkpointStore(t, db)
		ctx := context.Background()
		run := func(size, maxBatches int, reshape bool) (batchenrich.Report, error) {
			r, err := batchenrich.New(travelerSource(t, db, "e1", sqlbatch.PageByKey), batchenrichtest.NewEnricher(enrich), resultsSink(t, db),
				batchenrich.Options{BatchSize: size, MaxBatches: maxBatches, Durable: &batchenrich.Durable{Store: store, RunKey: "e1", AllowReshape: reshape}})
			if err != nil {
				t.Fatal(err)
			}
			return r.Run(ctx)
		}
		if _, err := run(10, 3, false); err != nil {
			t.Fatal(err)
		}
		rep, err := run(5, 0, false)
		var be *batchenrich.BatchError
		if !errors.As(err, &be) || be.Batch != 4 || be.Stage != batchenrich.StageCheckpoint || !errors.Is(err, batchenrich.ErrCheckpointMismatch) {
			t.Fatalf("resume with another batch size: err = %v", err)
		}
		for _, s := range []string{"BatchSize 10 (this run: 5)", "AllowReshape", "new RunKey"} {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("error %q does not say %q", err, s)
			}
		}
		if rep.Read != 0 {
			t.Fatalf("refused run read %d items", rep.Read)
		}
		if _, err := run(5, 0, true); err != nil {
			t.Fatal(err)
		}
		cp, err := store.Load(ctx, "e1")
		if err != nil || !cp.Done || cp.BatchSize != 5 {
			t.Fatalf("checkpoint after reshape = %+v, %v", cp, err)
		}
		var n int
		if err := db.Get(&n, `SELECT count(*) FROM traveler_batch_results`); err != nil || n != 95 {
			t.Fatalf("rows = %d, %v", n, err)
		}
	})
}

// A checkpoint table of the previous release (shape columns, no job,
// state or counts) with a run it left half done: the current code
// reports its status, resumes it to the end, records its state and
// counts from then on, and replays its failures.
func TestPreviousReleaseTableResumedReplayedAndReported(t *testing.T) {
	forEachDB(t, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
		ctx := context.Background()
		j := newReplayJob(t, k, db)
		// The previous release's run: batches 1..3 of 20 written, their
		// checkpoint saved as that release saved it. (The rows are
		// written by this code under a scratch checkpoint table: the
		// Sink did not change.)
		scratch, err := sqlbatch.NewCheckpointStore(db, sqlbatch.CheckpointConfig{Table: "scratch_checkpoints"})
		if err != nil {
			t.Fatal(err)
		}
		if err := scratch.CreateTable(ctx); err != nil {
			t.Fatal(err)
		}
		src, err := sqlbatch.NewSource[Traveler](db, replaySourceConfig)
		if err != nil {
			t.Fatal(err)
		}
		r, err := batchenrich.New(src, batchenrich.Enricher[Traveler, Enriched](j.enr), j.sink,
			batchenrich.Options{BatchSize: 20, MaxBatches: 3, Durable: &batchenrich.Durable{Store: scratch, RunKey: "e1"}})
		if err != nil {
			t.Fatal(err)
		}
		if rep, err := r.Run(ctx); err != nil || rep.Written != 60 {
			t.Fatalf("first 3 batches: wrote %d, %v", rep.Written, err)
		}
		mustExec(t, db, `DROP TABLE batchenrich_checkpoints`)
		mustExec(t, db, ddl(k, `CREATE TABLE batchenrich_checkpoints (
			run_key TEXT PRIMARY KEY, batch BIGINT NOT NULL, "cursor" TEXT NOT NULL,
			done BOOLEAN NOT NULL, updated_at TIMESTAMPTZ NOT NULL,
			lock_owner TEXT, lock_expires_at BIGINT,
			partitions INTEGER, batch_size BIGINT NOT NULL DEFAULT 0, fingerprint TEXT NOT NULL DEFAULT '')`))
		mustExec(t, db, rebind(db, `INSERT INTO batchenrich_checkpoints (run_key, batch, "cursor", done, updated_at, partitions, batch_size, fingerprint)
			VALUES ('e1', 3, '[60]', false, ?, NULL, 20, '')`), fixedTime)

		// A process of the new release: no CreateTable call.
		j.store, err = sqlbatch.NewCheckpointStore(db, sqlbatch.CheckpointConfig{})
		if err != nil {
			t.Fatal(err)
		}
		st, err := j.store.Status(ctx, "e1")
		if err != nil || len(st.Partitions) != 1 || st.Partitions[0].Batch != 3 || st.Partitions[0].Done {
			t.Fatalf("status of the previous release's run: %+v, %v", st, err)
		}
		j.api.requests()
		rep := j.run(t)
		if rep.BatchesSkipped != 3 || rep.BatchesRun != 7 || rep.Written != 140 {
			t.Fatalf("resume: skipped %d, ran %d, wrote %d; want 3, 7, 140", rep.BatchesSkipped, rep.BatchesRun, rep.Written)
		}
		if sent := j.api.requests(); len(sent) != 140 {
			t.Fatalf("resume sent requests for %d travelers, want the 140 after the checkpoint", len(sent))
		}
		j.checkRows(t, outage)
		st, err = j.store.Status(ctx, "e1")
		// Every batch is counted; the items only since the upgrade (the
		// previous release counted none).
		if err != nil || st.State != batchenrich.StateDone || st.Counts.Batches != 10 || st.Counts.Written != 140 {
			t.Fatalf("status after the resume: %+v, %v", st, err)
		}

		j.api.healed.Store(true)
		rr, err := j.replay(t, ctx, false, nil)
		if err != nil || rr.Written != 10 {
			t.Fatalf("replay: %+v, %v", rr, err)
		}
		j.checkRows(t, only404)
	})
}
