package sqlbatch

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// Test hooks.

// SetAfterStatement makes s call f after each statement of a write.
func (s *Sink[T, R]) SetAfterStatement(f func(ctx context.Context, tx *sqlx.Tx) error) {
	s.afterStatement = f
}

// SetChunkRows caps the rows per statement.
func (s *Sink[T, R]) SetChunkRows(n int) { s.chunkRows = n }

// UseCopy makes s stage rows with COPY on PostgreSQL.
func (s *Sink[T, R]) UseCopy() { s.pg = pgCopy }

// UseValues makes s use multi-row VALUES on PostgreSQL.
func (s *Sink[T, R]) UseValues() { s.pg = pgValues }

// LockPID returns the backend pid holding the PostgreSQL lock on runKey.
func (s *CheckpointStore) LockPID(runKey string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h := s.held[runKey]; h != nil {
		return h.pid
	}
	return 0
}

// UseUnnest makes s write PostgreSQL batches with one INSERT … SELECT
// FROM unnest($1::type[], …), one array parameter per column: the third
// strategy measured by BenchmarkSink, kept out of the library.
func (s *Sink[T, R]) UseUnnest() {
	s.pgBulk = func(ctx context.Context, tx *sqlx.Tx, t *target[T, R], rows [][]any) error {
		t.mu.Lock()
		if t.pgTypes == nil {
			types := map[string]string{}
			rs, err := tx.QueryContext(ctx, `SELECT quote_ident(attname), format_type(atttypid, atttypmod) FROM pg_attribute
				WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped`, t.table)
			if err != nil {
				t.mu.Unlock()
				return err
			}
			for rs.Next() {
				var n, typ string
				if err := rs.Scan(&n, &typ); err != nil {
					rs.Close()
					t.mu.Unlock()
					return err
				}
				types[n] = typ
			}
			rs.Close()
			for _, c := range t.cols {
				typ, ok := types[c]
				if !ok {
					typ, ok = types[strings.Trim(c, `"`)]
				}
				if !ok {
					t.mu.Unlock()
					return fmt.Errorf("no type for column %s", c)
				}
				t.pgTypes = append(t.pgTypes, typ)
			}
		}
		types := t.pgTypes
		t.mu.Unlock()
		args := make([]any, len(t.cols))
		casts := make([]string, len(t.cols))
		for j := range t.cols {
			col := make([]any, len(rows))
			for i, r := range rows {
				col[i] = r[j]
			}
			args[j] = pq.GenericArray{A: col}
			casts[j] = fmt.Sprintf("$%d::%s[]", j+1, types[j])
		}
		cols := strings.Join(t.cols, ", ")
		_, err := tx.ExecContext(ctx, "INSERT INTO "+t.table+" ("+cols+") SELECT * FROM unnest("+strings.Join(casts, ", ")+")"+t.conflict, args...)
		return err
	}
}

// UseUpsertOnly makes s skip the optimistic direct COPY on PostgreSQL.
func (s *Sink[T, R]) UseUpsertOnly() { s.pg = pgUpsertOnly }

// Conflicted reports whether s has met an existing key in a direct COPY.
func (s *Sink[T, R]) Conflicted() bool { return s.conflicted.Load() }

// DDLLockKeyName is what DDLLockKey hashes.
const DDLLockKeyName = "batchenrich:ddl"

// DB returns the store's database.
func (s *CheckpointStore) DB() *sqlx.DB { return s.db }

// File returns the path of the store's SQLite database file.
func (s *CheckpointStore) File() string {
	var f string
	_ = s.db.Get(&f, `SELECT file FROM pragma_database_list WHERE name = 'main'`)
	return f
}

// StopRenewing stops b's renewals without releasing its lease, as if its
// process had been killed: the lease expires.
func (b *Budget) StopRenewing() {
	b.stop()
	<-b.done
}

// LockKey returns the advisory lock key b's renewals take.
func (b *Budget) LockKey() int64 { return b.lockKey }

// ValidUntil returns when b's lease would expire without a renewal.
func (b *Budget) ValidUntil() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.validUntil
}
