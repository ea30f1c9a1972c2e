package sqlbatch

import (
	"context"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"

	"github.com/batchenrich/batchenrich/internal/sqldialect"
)

// DDLLockKey is the key of the PostgreSQL advisory lock ExecDDL holds
// while it runs (pg_advisory_xact_lock(DDLLockKey)): the FNV-1a hash of
// "batchenrich:ddl". Take the same lock in DDL of your own that must not
// run concurrently with it.
const DDLLockKey int64 = -6657444140940508908

// ExecDDL runs stmts — typically CREATE TABLE IF NOT EXISTS and CREATE
// INDEX IF NOT EXISTS — in one transaction, serialised with every other
// ExecDDL on the same database, and commits it. It is safe to call from
// several processes starting at once on a fresh database.
//
// On PostgreSQL, two sessions running CREATE TABLE IF NOT EXISTS for the
// same new table at the same instant can both find it missing, and one
// then fails with "duplicate key value violates unique constraint
// pg_type_typname_nsp_index". ExecDDL first takes a transaction-level
// advisory lock (DDLLockKey), held until the transaction ends, so the
// second session runs its statements only after the first committed, and
// finds the table there. On SQLite, a write transaction already excludes
// every other writer, so the statements simply run in one transaction.
//
// CheckpointStore.CreateTable uses it. The statements are trusted SQL text
// written by the programmer, run as given (no placeholders).
func ExecDDL(ctx context.Context, db *sqlx.DB, stmts ...string) error {
	d, err := dialectOf(db)
	if err != nil {
		return err
	}
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlbatch: ddl: begin: %w", err)
	}
	if d.Kind == sqldialect.PostgreSQL {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, DDLLockKey); err != nil {
			return errors.Join(fmt.Errorf("sqlbatch: ddl: lock: %w", err), tx.Rollback())
		}
	}
	for _, q := range stmts {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			rerr := tx.Rollback()
			if errors.Is(rerr, context.Canceled) || errors.Is(rerr, context.DeadlineExceeded) || isTxDone(rerr) {
				rerr = nil
			}
			return errors.Join(fmt.Errorf("sqlbatch: ddl: %w", err), rerr)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlbatch: ddl: commit: %w", err)
	}
	return nil
}
