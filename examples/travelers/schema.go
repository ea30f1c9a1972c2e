package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/batchenrich/batchenrich/sqlbatch"
	"github.com/jmoiron/sqlx"
)

// sourceDDL is the fixture's source table, the same on both databases.
const sourceDDL = `CREATE TABLE IF NOT EXISTS traveler_batch_source (
	execution_id TEXT NOT NULL,
	traveler_id INTEGER NOT NULL,
	traveler_name TEXT NOT NULL,
	PRIMARY KEY (execution_id, traveler_id))`

// The fixture's tables, in each database's nearest types.
var schemas = map[string][]string{
	"postgres": {
		sourceDDL,
		`CREATE TABLE IF NOT EXISTS traveler_batch_results (
			execution_id TEXT NOT NULL,
			traveler_id INTEGER NOT NULL,
			traveler_name TEXT NOT NULL,
			normalized_name TEXT NOT NULL,
			profile_status INTEGER NOT NULL,
			profile_hash TEXT NOT NULL,
			profile_payload JSONB NOT NULL,
			is_valid BOOLEAN NOT NULL DEFAULT TRUE,
			validation_error TEXT,
			batch_number INTEGER NOT NULL,
			processed_at TIMESTAMPTZ DEFAULT NOW(),
			PRIMARY KEY (execution_id, traveler_id))`,
	},
	"sqlite": {
		sourceDDL,
		`CREATE TABLE IF NOT EXISTS traveler_batch_results (
			execution_id TEXT NOT NULL,
			traveler_id INTEGER NOT NULL,
			traveler_name TEXT NOT NULL,
			normalized_name TEXT NOT NULL,
			profile_status INTEGER NOT NULL,
			profile_hash TEXT NOT NULL,
			profile_payload TEXT NOT NULL CHECK (json_valid(profile_payload)),
			is_valid INTEGER NOT NULL DEFAULT 1 CHECK (is_valid IN (0, 1)),
			validation_error TEXT,
			batch_number INTEGER NOT NULL,
			processed_at TEXT DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
			PRIMARY KEY (execution_id, traveler_id))`,
	},
}

// createTables creates the fixture's tables and the checkpoint table if
// they are missing. sqlbatch.ExecDDL serialises it with every other
// process doing the same, so that two first runs at once on a fresh
// PostgreSQL database both succeed.
func createTables(ctx context.Context, db *sqlx.DB, store *sqlbatch.CheckpointStore) error {
	if err := sqlbatch.ExecDDL(ctx, db, schemas[db.DriverName()]...); err != nil {
		return fmt.Errorf("create tables: %w", err)
	}
	if err := store.CreateTable(ctx); err != nil {
		return fmt.Errorf("create tables: %w", err)
	}
	return nil
}

// seedChunk bounds the rows of one INSERT (3 parameters a row), under both
// databases' parameter limits.
const seedChunk = 5000

// seed inserts (executionID, N, 'Traveler N') for N = 1..rows, idempotently,
// in one transaction.
func seed(ctx context.Context, db *sqlx.DB, executionID string, rows int) error {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	defer tx.Rollback()
	for lo := 1; lo <= rows; lo += seedChunk {
		hi := min(rows, lo+seedChunk-1)
		var sb strings.Builder
		sb.WriteString(`INSERT INTO traveler_batch_source (execution_id, traveler_id, traveler_name) VALUES `)
		args := make([]any, 0, 3*(hi-lo+1))
		for n := lo; n <= hi; n++ {
			if n > lo {
				sb.WriteByte(',')
			}
			sb.WriteString("(?, ?, ?)")
			args = append(args, executionID, n, fmt.Sprintf("Traveler %d", n))
		}
		sb.WriteString(` ON CONFLICT (execution_id, traveler_id) DO NOTHING`)
		if _, err := tx.ExecContext(ctx, db.Rebind(sb.String()), args...); err != nil {
			return fmt.Errorf("seed: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	return nil
}
