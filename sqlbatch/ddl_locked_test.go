package sqlbatch_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/batchenrich/batchenrich/sqlbatch"
)

// On SQLite, CreateTable of a checkpoint table that already exists takes
// no write lock: it succeeds while another process holds the database's
// write lock past the busy timeout (a runner frozen in a write, as
// internal/crashtest's TestStalledHolder does with SIGSTOP), where
// running its DDL would fail with "database is locked".
func TestCreateTableExistingWhileWriteLocked(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "ddl.db")
	holder, db := openSQLite(t, path, 10000), openSQLite(t, path, 50)
	ctx := context.Background()
	first, err := sqlbatch.NewCheckpointStore(holder, sqlbatch.CheckpointConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := first.CreateTable(ctx); err != nil {
		t.Fatal(err)
	}
	tx, err := holder.BeginTxx(ctx, nil) // BEGIN IMMEDIATE: takes the write lock
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS hold (x INTEGER)`); err != nil {
		t.Fatal(err)
	}
	store, err := sqlbatch.NewCheckpointStore(db, sqlbatch.CheckpointConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.CreateTable(ctx); err != nil {
		t.Fatalf("CreateTable of an existing table while the database is write-locked: %v", err)
	}
	if _, err := store.Load(ctx, "k"); err != nil {
		t.Fatalf("Load while the database is write-locked: %v", err)
	}
	// A missing table still needs its DDL, which waits for the lock.
	other, err := sqlbatch.NewCheckpointStore(db, sqlbatch.CheckpointConfig{Table: "other_checkpoints"})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.CreateTable(ctx); err == nil {
		t.Fatal("CreateTable of a new table while the database is write-locked succeeded")
	}
}
