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
// Three ways were measured with BenchmarkSink (PostgreSQL 15 on a shared
// 2-core host, 7 columns including a jsonb one, fresh keys, lib/pq; time
// per batch, range of 3 runs of
// go test -run '^$' -bench 'Sink/postgres' -benchmem -count 3):
//
//		                                   100 rows/batch   1000 rows/batch
//		multi-row VALUES … ON CONFLICT        5.9–7.9 ms       67–106 ms
//		COPY to temp table + INSERT…SELECT    7.9–9.8 ms       21–27 ms
//		unnest($1::type[], …) ON CONFLICT     7.9–10.3 ms      35–38 ms
//		raw COPY into the table (the floor)   2.7–4.8 ms       11–14 ms
//
//	  - pgValues: one INSERT … VALUES (…), (…) ON CONFLICT DO UPDATE per
//	    chunk of at most 65,535 parameters: one round trip, but its cost
//	    grows faster than linearly with the parameters of a statement, as
//	    PostgreSQL parses, types and plans every one of them.
//	  - pgCopy: CREATE TEMP TABLE … ON COMMIT DROP AS SELECT cols FROM
//	    target WITH NO DATA, COPY the rows into it (lib/pq's COPY FROM
//	    STDIN, the cheapest encoding there is), then one INSERT … SELECT …
//	    ON CONFLICT DO UPDATE from it: four round trips and a temporary
//	    table per transaction, a fixed cost that pays off on larger batches.
//	  - unnest: one array parameter per column. Never the fastest, and it
//	    needs every column's type from the catalog and a round trip of every
//	    value through an array literal, which breaks for array and bytea
//	    columns. It lives only in the benchmarks (export_test.go).
//
// See defaultPGStrategy for the choice.
type pgStrategy int

const (
	pgAuto pgStrategy = iota
	pgValues
	pgCopy
)

// defaultPGStrategy picks, per batch, the faster of the two measured
// winners: multi-row VALUES for a batch of at most copyMinParams values
// (about 1.3× faster than COPY at 100 rows × 7 columns), COPY staging
// above it (2.5–4× faster than VALUES and 1.4–1.7× faster than unnest at
// 1000 rows, within about 2× of a raw COPY that handles no conflicts). The
// crossover was not pinned down between 100 and 1000 rows; copyMinParams
// sits between the two measured points. SQLite has no COPY and always uses
// multi-row VALUES, chunked under its 32,766-parameter limit.
const defaultPGStrategy = pgAuto

// copyMinParams is the number of values (rows × columns) from which
// pgAuto uses COPY.
const copyMinParams = 2000

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
