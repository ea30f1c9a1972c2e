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
// Three ways were measured with BenchmarkSink (PostgreSQL 15 on the same
// 2-core host, 7 columns including a jsonb one, fresh keys, lib/pq;
// go test -run '^$' -bench 'Sink/postgres' -benchmem -count 3):
//
//		                                   100 rows/batch   1000 rows/batch
//		multi-row VALUES … ON CONFLICT        3.4–8.6 ms       69–77 ms
//		COPY to temp table + INSERT…SELECT    4.9–6.0 ms       19–27 ms
//		unnest($1::type[], …) ON CONFLICT     3.5–5.2 ms       35–44 ms
//		raw COPY into the table (the floor)   2.5–3.2 ms       12–20 ms
//
//	  - pgValues: one INSERT … VALUES (…), (…) ON CONFLICT DO UPDATE per
//	    chunk of at most 65,535 parameters. Its cost grows faster than
//	    linearly with the rows of a statement: PostgreSQL parses, types and
//	    plans every one of the thousands of parameters.
//	  - pgCopy: CREATE TEMP TABLE … ON COMMIT DROP AS SELECT cols FROM
//	    target WITH NO DATA, COPY the rows into it (lib/pq's COPY FROM
//	    STDIN, the cheapest encoding there is), then one INSERT … SELECT …
//	    ON CONFLICT DO UPDATE from it.
//	  - unnest: one array parameter per column. Close to VALUES at 100 rows
//	    but 1.5–2× slower than COPY at 1000, and it needs every column's
//	    type from the catalog and a round trip of every value through an
//	    array literal, which breaks for array and bytea columns. It lives
//	    only in the benchmarks (export_test.go).
//
// See defaultPGStrategy for the choice.
type pgStrategy int

const (
	pgValues pgStrategy = iota
	pgCopy
)

// defaultPGStrategy is COPY into a staging table, then one set-based
// upsert: the fastest at 1000 rows by 2.5–3.5× over VALUES and about 1.5×
// over unnest, within 1.3–1.9× of a raw COPY that does no conflict
// handling at all, and within the noise of the others at 100 rows (where
// its four round trips cost what VALUES's planning does). Its extra cost is
// a temporary table per transaction (catalog churn, cleaned by
// autovacuum). SQLite has no COPY and uses multi-row VALUES, chunked under
// its 32,766-parameter limit.
const defaultPGStrategy = pgCopy

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
