package sqlbatch

import (
	"context"
	"fmt"
	"os"

	"github.com/batchenrich/batchenrich/internal/sqldialect"
)

// shapeColumn is a column of the checkpoint table added after its first
// release: the shape of the run that saved the checkpoint
// (batchenrich.Checkpoint.Partitions, BatchSize and Fingerprint).
type shapeColumn struct {
	name string
	def  func(sqldialect.Dialect) string // its definition, after the name
}

var shapeColumns = []shapeColumn{
	// NULL for an unpartitioned run, as before partitions existed.
	{"partitions", func(sqldialect.Dialect) string { return "INTEGER" }},
	// 0 and '': not recorded (a row saved before the column existed).
	{"batch_size", func(d sqldialect.Dialect) string { return d.TypeBigInt() + " NOT NULL DEFAULT 0" }},
	{"fingerprint", func(d sqldialect.Dialect) string { return d.TypeText() + " NOT NULL DEFAULT ''" }},
	// The run's identity (batchenrich.Checkpoint.Job and Definition).
	{"job", func(d sqldialect.Dialect) string { return d.TypeText() + " NOT NULL DEFAULT ''" }},
	{"definition", func(d sqldialect.Dialect) string { return d.TypeText() + " NOT NULL DEFAULT ''" }},
	// The run's state (batchenrich.Checkpoint.State, Counts, LastError),
	// when it started and finished, who saved it last, and a pending
	// stop request (RequestStop).
	{"state", text},
	{"batches", bigint}, {"items_read", bigint}, {"items_enriched", bigint}, {"items_failed", bigint},
	{"failed_transient", bigint}, {"failed_permanent", bigint}, {"items_written", bigint},
	{"started_at", func(d sqldialect.Dialect) string { return d.TypeTimestamp() }},
	{"finished_at", func(d sqldialect.Dialect) string { return d.TypeTimestamp() }},
	{"holder_host", text}, {"holder_pid", bigint}, {"last_error", text},
	{"stop_requested", func(d sqldialect.Dialect) string { return d.TypeBool() + " NOT NULL DEFAULT FALSE" }},
}

func text(d sqldialect.Dialect) string   { return d.TypeText() + " NOT NULL DEFAULT ''" }
func bigint(d sqldialect.Dialect) string { return d.TypeBigInt() + " NOT NULL DEFAULT 0" }

// upgrade adds the shape columns to a checkpoint table created by an older
// version, once per store, with ExecDDL. Concurrent upgrades from other
// stores or processes are harmless: a column another one just added is
// taken as added.
func (s *CheckpointStore) upgrade(ctx context.Context) error {
	return s.upgraded.do(func() error {
		for _, c := range shapeColumns {
			if s.hasColumn(ctx, c.name) {
				continue
			}
			q := `ALTER TABLE ` + s.table + ` ADD COLUMN ` + c.name + " " + c.def(s.d)
			if s.d.Kind == sqldialect.PostgreSQL {
				q = `ALTER TABLE ` + s.table + ` ADD COLUMN IF NOT EXISTS ` + c.name + " " + c.def(s.d)
			}
			if err := ExecDDL(ctx, s.db, q); err != nil && !s.hasColumn(ctx, c.name) {
				return fmt.Errorf("sqlbatch: checkpoint table %s: add column %s (call CreateTable first if the table does not exist): %w", s.name, c.name, err)
			}
		}
		return nil
	})
}

// hasColumn reports whether the checkpoint table has the column name.
func (s *CheckpointStore) hasColumn(ctx context.Context, name string) bool {
	rows, err := s.db.QueryContext(ctx, `SELECT `+name+` FROM `+s.table+` WHERE 1 = 0`)
	if err != nil {
		return false
	}
	rows.Close()
	return true
}

// complete reports whether the checkpoint table exists with every column
// this version uses, by a read that selects them all and no row (no write
// lock taken; false on any error, which the DDL that follows reports).
func (s *CheckpointStore) complete(ctx context.Context) bool {
	cols := `run_key, batch, "cursor", done, updated_at, lock_owner, lock_expires_at`
	for _, c := range shapeColumns {
		cols += ", " + c.name
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+cols+` FROM `+s.table+` WHERE 1 = 0`)
	if err != nil {
		return false
	}
	return rows.Close() == nil
}

// holderHost and holderPID name this process in the rows it saves.
var (
	holderHost, _ = os.Hostname()
	holderPID     = os.Getpid()
)
