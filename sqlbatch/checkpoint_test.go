package sqlbatch_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/internal/testdb"
	"github.com/batchenrich/batchenrich/sqlbatch"
)

// A runner whose lock is gone (its PostgreSQL session died, or its SQLite
// lease expired) can no longer save, and another runner takes over.
func TestCheckpointLockLost(t *testing.T) {
	forEachDriver(t, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
		ctx := context.Background()
		a, b := checkpointStore(t, db), checkpointStore(t, db)
		unlock, ok, err := a.TryLock(ctx, "e1")
		if err != nil || !ok {
			t.Fatal(ok, err)
		}
		defer unlock()
		if _, ok, _ := b.TryLock(ctx, "e1"); ok {
			t.Fatal("second store took a held lock")
		}
		// The holder dies.
		if k.Postgres() {
			terminateBackend(t, db, a.LockPID("e1"))
		} else {
			mustExec(t, db, `UPDATE batchenrich_checkpoints SET lock_expires_at = 0 WHERE run_key = 'e1'`)
		}
		unlockB, ok, err := b.TryLock(ctx, "e1")
		if err != nil || !ok {
			t.Fatalf("takeover: %v, %v", ok, err)
		}
		defer unlockB()
		err = a.Save(ctx, batchenrich.Checkpoint{RunKey: "e1", Batch: 9})
		if !errors.Is(err, sqlbatch.ErrLockLost) {
			t.Fatalf("Save by the old holder: %v, want ErrLockLost", err)
		}
		if err := b.Save(ctx, batchenrich.Checkpoint{RunKey: "e1", Batch: 1}); err != nil {
			t.Fatal(err)
		}
		cp, _ := b.Load(ctx, "e1")
		if cp.Batch != 1 {
			t.Fatalf("checkpoint = %+v", cp)
		}
	})
}

func TestWriteCheckpointedOtherDatabase(t *testing.T) {
	forEachDB(t, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
		createResults(t, k, db)
		other := checkpointStore(t, testdb.SQLiteDB(t))
		err := resultsSink(t, db).WriteCheckpointed(context.Background(), batchOf(1, "e1", 1, 2), other, batchenrich.Checkpoint{RunKey: "e1", Batch: 1})
		if !errors.Is(err, batchenrich.ErrCheckpointUnsupported) {
			t.Fatalf("err = %v, want ErrCheckpointUnsupported", err)
		}
		if n := len(readResults(t, db)); n != 0 {
			t.Fatalf("%d rows written", n)
		}
		// A failed write saves no checkpoint.
		store := checkpointStore(t, db)
		bad := batchOf(2, "e1", 1, 2)
		bad.Results[1].Item.ExecutionID = "" // fine for the DB
		s := resultsSink(t, db)
		s.SetAfterStatement(func(context.Context, *sqlx.Tx) error { return errors.New("boom") })
		if err := s.WriteCheckpointed(context.Background(), bad, store, batchenrich.Checkpoint{RunKey: "e1", Batch: 2}); err == nil {
			t.Fatal("no error")
		}
		if cp, _ := store.Load(context.Background(), "e1"); cp.Batch != 0 {
			t.Fatalf("checkpoint saved with a failed write: %+v", cp)
		}
	})
}

func TestCheckpointConfigErrors(t *testing.T) {
	db := testdb.SQLiteDB(t)
	for _, cfg := range []sqlbatch.CheckpointConfig{
		{Table: "a.b.c"}, {Table: "x\x00"}, {LeaseTTL: -1}, {LeaseTTL: 1},
	} {
		if _, err := sqlbatch.NewCheckpointStore(db, cfg); !errors.Is(err, batchenrich.ErrInvalidConfig) {
			t.Errorf("%+v: err = %v", cfg, err)
		}
	}
	s, err := sqlbatch.NewCheckpointStore(db, sqlbatch.CheckpointConfig{Table: `main.my "checkpoints"`})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.CreateTable(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTable(ctx); err != nil {
		t.Fatalf("CreateTable again: %v", err)
	}
	if err := s.Save(ctx, batchenrich.Checkpoint{RunKey: "k", Batch: -1}); err == nil {
		t.Fatal("negative batch saved")
	}
}

// On SQLite, a runner holding the database's write lock past the busy
// timeout makes TryLock answer "taken" (so a waiting Runner retries), not
// fail the run.
func TestCheckpointTryLockSQLiteBusy(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "busy.db")
	holder, db := openSQLite(t, path, 10000), openSQLite(t, path, 50)
	store := checkpointStore(t, db)
	ctx := context.Background()
	tx, err := holder.BeginTxx(ctx, nil) // BEGIN IMMEDIATE: takes the write lock
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS hold (x INTEGER)`); err != nil {
		t.Fatal(err)
	}
	unlock, ok, err := store.TryLock(ctx, "busy-run")
	if err != nil || ok || unlock != nil {
		t.Fatalf("TryLock while the database is write-locked = %v, %v; want taken, no error", ok, err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	unlock, ok, err = store.TryLock(ctx, "busy-run")
	if err != nil || !ok {
		t.Fatalf("TryLock after the write lock ended = %v, %v", ok, err)
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
}
