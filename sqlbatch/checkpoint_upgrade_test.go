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
