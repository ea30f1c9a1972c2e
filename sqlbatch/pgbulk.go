package sqlbatch

import (
	"context"
	"errors"
	"fmt"
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
// go test -run '^$' -bench 'Sink/postgres' -benchmem -count 3; payload is
// the size of the jsonb value: small about 30 bytes, wide about 700, the
// size of an httpbin answer):
//
//	                                 payload   50 rows    100 rows   300 rows   1000 rows
//	VALUES … ON CONFLICT             small     8.6–9.0    3.5–5.7    13–17      52–100 ms
//	                                 wide      4.9–8.1    12–13      27–31      104–116 ms
//	COPY to temp table + INSERT…SELECT small   4.4–5.0    4.4–4.8    6.3–7.5    25–39 ms
//	                                 wide      4.9–6.2    5.7–9.0    9.8–16     32–39 ms
//	unnest($1::type[], …)            wide      6.9–8.8    8.3        23         91 ms
//	raw COPY (the floor)             wide      3.0–3.5    3.7        5.8–9.7    19–24 ms
//
// (load average 3–4 while measuring: the ranges are wide, the order is
// not).
//
//   - pgValues: one INSERT … VALUES (…), (…) ON CONFLICT DO UPDATE per
//     chunk of at most 65,535 parameters: one round trip, but its cost
//     grows faster than linearly with the parameters of a statement, as
//     PostgreSQL parses, types and plans every one of them.
//   - pgCopy: CREATE TEMP TABLE … ON COMMIT DROP AS SELECT cols FROM
//     target WITH NO DATA, COPY the rows into it (lib/pq's COPY FROM
//     STDIN, the cheapest encoding there is), then one INSERT … SELECT …
//     ON CONFLICT DO UPDATE from it: four round trips and a temporary
//     table per transaction, a fixed cost that pays off on larger batches.
//   - unnest: one array parameter per column. Never the fastest, and it
//     needs every column's type from the catalog and a round trip of every
//     value through an array literal, which breaks for array and bytea
//     columns. It lives only in the benchmarks (export_test.go).
//
// See defaultPGStrategy for the choice between the two upserts, and
// writeDirect for the optimistic COPY tried before either: with fresh keys
// (median of 5, -benchtime 40x, wide payloads, load 1.7) it takes
// 4.1 ms per 100 rows and 20.8 ms per 1000, against 5.9 and 30.9 ms for the
// upsert alone and 3.2 and 21.6 ms for a raw COPY.
type pgStrategy int

const (
	pgAuto pgStrategy = iota
	pgValues
	pgCopy
	pgUpsertOnly // pgAuto without the optimistic direct COPY (benchmarks)
)

// defaultPGStrategy picks, per batch, the faster of the two measured
// winners: multi-row VALUES for a batch of fewer than copyMinParams values
// (rows × columns), COPY staging from there on. Around 50 to 100 rows the
// two are even within this host's noise (a later run of 5 at 100 wide rows:
// VALUES 7.4–9.8 ms, COPY 7.8–8.7 ms); from 300 rows on COPY staging wins
// clearly (2–3× at 300 wide rows, 3× at 1000, within about 1.4× of a raw
// COPY that handles no conflicts). copyMinParams puts the switch at 50–100
// rows for a table of 5 to 10 columns, where neither loses much. SQLite
// has no COPY and always uses multi-row VALUES, chunked under its
// 32,766-parameter limit.
const defaultPGStrategy = pgAuto

// copyMinParams is the number of values (rows × columns) from which
// pgAuto uses COPY.
const copyMinParams = 500

var stageSeq atomic.Uint64

// Optimistic direct COPY. A batch is usually written once: its keys are
// new, and an upsert pays for conflict handling it does not need (the
// staging table, or VALUES' per-parameter parsing). So pgAuto first COPYs
// the rows straight into the target, the cheapest write PostgreSQL has
// (BenchmarkSink's rawcopy). If a key already exists, the COPY fails with
// a unique violation and the rows go through the upsert instead: the
// result is the same either way. In a transaction the Sink began (Write,
// WriteCheckpointed) the COPY runs bare, and a violation rolls the whole
// transaction back and runs it again (errDirectConflict, see inTx): no
// savepoint, so two round trips fewer per batch. In a caller's
// transaction (WriteTx) it runs inside a savepoint, which a violation
// rolls back. A Sink that has met a conflict stops trying (conflicted),
// since a table being rewritten (a re-run over the same keys) would
// otherwise pay for a wasted COPY per batch.

// savepoint names the savepoint of the optimistic COPY in a caller's
// transaction.
const savepoint = "batchenrich_direct_copy"

// uniqueViolation is PostgreSQL's SQLSTATE for a duplicate key.
const uniqueViolation = "23505"

// errDirectConflict is the error of a direct COPY, in a transaction the
// Sink began, that met an existing key: the transaction is aborted, and
// inTx runs it again, now with the upsert.
var errDirectConflict = errors.New("direct COPY met an existing key")

// writeDirect COPYs rows straight into t. In a caller's transaction
// (owned false) it does so within a savepoint, and returns done=false,
// with the transaction as it was, when a key already exists. In a
// transaction the Sink began (owned true) it COPYs without one, and
// returns an error wrapping errDirectConflict when a key already exists.
func (s *Sink[T, R]) writeDirect(ctx context.Context, tx *sqlx.Tx, t *target[T, R], rows [][]any, owned bool) (done bool, err error) {
	if !owned {
		if _, err := tx.ExecContext(ctx, "SAVEPOINT "+savepoint); err != nil {
			return false, err
		}
	}
	err = s.copyRows(ctx, tx, t.ident, t.table, t.names, strings.Join(t.cols, ", "), rows)
	if err == nil {
		if err := s.hook(ctx, tx); err != nil {
			return false, err
		}
		if owned {
			return true, nil
		}
		_, err := tx.ExecContext(ctx, "RELEASE SAVEPOINT "+savepoint)
		return err == nil, err
	}
	var coded interface{ SQLState() string }
	if !errors.As(err, &coded) || coded.SQLState() != uniqueViolation {
		return false, err
	}
	s.conflicted.Store(true)
	if owned {
		return false, fmt.Errorf("%w: %w", errDirectConflict, err)
	}
	if _, rerr := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT "+savepoint); rerr != nil {
		return false, errors.Join(err, rerr)
	}
	return false, nil
}

// copyRows sends rows to table with COPY FROM STDIN. ident and names are
// the table and columns unquoted, table and cols quoted.
func (s *Sink[T, R]) copyRows(ctx context.Context, tx *sqlx.Tx, ident []string, table string, names []string, cols string, rows [][]any) error {
	if s.d.PGX {
		return s.pgxCopy(ctx, tx, ident, names, rows)
	}
	stmt, err := tx.PrepareContext(ctx, "COPY "+table+" ("+cols+") FROM STDIN")
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
	return stmt.Close()
}

// writeCopy stages rows with COPY, then upserts them in one statement.
func (s *Sink[T, R]) writeCopy(ctx context.Context, tx *sqlx.Tx, t *target[T, R], rows [][]any) error {
	stageName := "batchenrich_stage_" + strconv.FormatUint(stageSeq.Add(1), 10)
	stage := `"` + stageName + `"`
	cols := strings.Join(t.cols, ", ")
	if _, err := tx.ExecContext(ctx, "CREATE TEMP TABLE "+stage+" ON COMMIT DROP AS SELECT "+cols+" FROM "+t.table+" WITH NO DATA"); err != nil {
		return err
	}
	if err := s.copyRows(ctx, tx, []string{stageName}, stage, t.names, cols, rows); err != nil {
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
