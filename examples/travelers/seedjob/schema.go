package seedjob

import (
	"context"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"
)

// SourceDDL creates the fixture's source table, traveler_batch_source, if
// it is missing; the same on PostgreSQL and SQLite.
const SourceDDL = `CREATE TABLE IF NOT EXISTS traveler_batch_source (
	execution_id TEXT NOT NULL,
	traveler_id INTEGER NOT NULL,
	traveler_name TEXT NOT NULL,
	PRIMARY KEY (execution_id, traveler_id))`

// The fixture's results table, in each database's nearest types.
var resultsDDL = map[string]string{
	"postgres": `CREATE TABLE IF NOT EXISTS traveler_batch_results (
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
	"sqlite": `CREATE TABLE IF NOT EXISTS traveler_batch_results (
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
}

// Schema returns the statements creating the fixture's tables
// (traveler_batch_source, then traveler_batch_results) if they are
// missing, for driver "postgres" or "sqlite" (a database/sql driver name,
// as sqlx.DB.DriverName reports it); nil for any other driver. The slice
// is the caller's: appending to it changes no other caller's.
func Schema(driver string) []string {
	results, ok := resultsDDL[driver]
	if !ok {
		return nil
	}
	return []string{SourceDDL, results}
}

// seedChunk bounds the rows of one INSERT (3 parameters a row), under both
// databases' parameter limits.
const seedChunk = 5000

// Seed inserts (executionID, N, 'Traveler N') into traveler_batch_source
// for N = 1..rows, idempotently (rows already there are kept), in one
// transaction.
func Seed(ctx context.Context, db *sqlx.DB, executionID string, rows int) error {
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
