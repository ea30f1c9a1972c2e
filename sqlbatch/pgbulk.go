package sqlbatch

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/jmoiron/sqlx"
)

// pgStrategy is how a Sink moves a batch into PostgreSQL.
//
// Three ways were measured (BenchmarkSink, PostgreSQL 15, 8 columns
// including a jsonb one; figures in the package's benchmark notes):
//
//   - pgValues: multi-row INSERT … VALUES (…), (…) ON CONFLICT DO UPDATE,
//     one statement per chunk of at most 65,535 parameters.
//   - pgCopy: CREATE TEMP TABLE … AS SELECT … WITH NO DATA, COPY the rows
//     into it, then INSERT … SELECT … ON CONFLICT DO UPDATE from it.
//   - unnest: one INSERT … SELECT FROM unnest($1::type[], …) ON CONFLICT,
//     one array parameter per column (needs the column types from the
//     catalog; kept in the benchmarks only).
//
// See defaultPGStrategy for the choice.
type pgStrategy int

const (
	pgValues pgStrategy = iota
	pgCopy
)

// defaultPGStrategy is multi-row VALUES.
//
// Measured on batches of 100 and 1000 rows it was the fastest of the three:
// one round trip per batch (a batch of up to 65,535/columns rows fits one
// statement), against four for COPY (create the staging table, start COPY,
// stream, insert from it), whose per-batch catalog work (a temporary table
// per transaction) costs more than its cheaper row encoding saves at these
// sizes. unnest was close to VALUES but needs the column types from the
// catalog and a text round trip of every value through an array literal,
// which breaks for array and bytea columns. VALUES is also the statement
// SQLite runs, so both databases share one tested code path, and it binds
// driver.Valuer results exactly as a single-row INSERT would.
const defaultPGStrategy = pgValues

var stageSeq atomic.Uint64

// writeCopy stages rows with COPY, then upserts them in one statement.
func (s *Sink[T, R]) writeCopy(ctx context.Context, tx *sqlx.Tx, t *target[T, R], rows [][]any) error {
	stage := `"batchenrich_stage_` + strconv.FormatUint(stageSeq.Add(1), 10) + `"`
	cols := strings.Join(t.cols, ", ")
	if _, err := tx.ExecContext(ctx, "CREATE TEMP TABLE "+stage+" ON COMMIT DROP AS SELECT "+cols+" FROM "+t.table+" WITH NO DATA"); err != nil {
		return err
	}
	stmt, err := tx.PrepareContext(ctx, "COPY "+stage+" ("+cols+") FROM STDIN")
	if err != nil {
		return err
	}
	for _, r := range rows {
		if _, err := stmt.ExecContext(ctx, r...); err != nil {
			stmt.Close()
			return err
		}
	}
	if _, err := stmt.ExecContext(ctx); err != nil {
		stmt.Close()
		return err
	}
	if err := stmt.Close(); err != nil {
		return err
	}
	if err := s.hook(ctx, tx); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO "+t.table+" ("+cols+") SELECT "+cols+" FROM "+stage+t.conflict); err != nil {
		return err
	}
	return s.hook(ctx, tx)
}
