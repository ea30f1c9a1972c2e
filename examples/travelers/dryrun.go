package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/examples/travelers/seedjob"
	"github.com/batchenrich/batchenrich/redact"
	"github.com/batchenrich/batchenrich/sqlbatch"
	"github.com/jmoiron/sqlx"
)

// dryRun checks the database and API and prints the plan of windows from
// the run's checkpoint, creating nothing, writing nothing (a SQLite file
// is opened read-only, leaving no -wal or -shm file) and sending no
// request.
func dryRun(ctx context.Context, cfg config, w io.Writer) error {
	var cp batchenrich.Checkpoint
	db, err := openReadOnly(ctx, cfg)
	switch {
	case err != nil:
		return err
	case db == nil:
		fmt.Fprintf(w, "database: %s (does not exist yet; a run would create it)\n", cfg.dbDesc)
	default:
		defer db.Close()
		if err := checkSchema(ctx, db); err != nil {
			return err
		}
		if cp, err = loadCheckpoint(ctx, db, cfg.executionID); err != nil {
			return err
		}
		// What the run would refuse (another -batch-size or -partitions
		// than the checkpoint recorded), refused alike.
		if err := batchenrich.CheckResume(ctx, batchenrich.Options{BatchSize: cfg.batchSize,
			Durable: &batchenrich.Durable{Store: loaded(cp), RunKey: cfg.executionID}}); err != nil {
			return err
		}
		fmt.Fprintf(w, "database: %s (reachable)\n", cfg.dbDesc)
	}
	if cfg.profileURL == "" {
		fmt.Fprintln(w, "profile API: embedded httpbin on loopback (started by a run)")
	} else {
		if err := seedjob.DialAPI(ctx, cfg.profileURL); err != nil {
			return err
		}
		fmt.Fprintf(w, "profile API: %s (reachable)\n", redact.String(cfg.profileURL))
	}
	expected := expectedRows(cfg.seedRows, cfg.batchSize, cfg.maxBatches)
	batches := (expected + cfg.batchSize - 1) / cfg.batchSize
	fmt.Fprintf(w, "execution id: %s\nplan: %d source rows, %d expected in %d batches of %d (cap %d), %d HTTP calls in flight\n",
		cfg.executionID, cfg.seedRows, expected, batches, cfg.batchSize, cfg.maxBatches, cfg.concurrency)
	first := 1
	switch {
	case cp.Done || cp.Batch >= batches && cp.Batch > 0:
		fmt.Fprintf(w, "checkpoint: done after batch %d; a run has nothing left to do\n", cp.Batch)
		return nil
	case cp.Batch > 0:
		fmt.Fprintf(w, "checkpoint: batches 1..%d committed; a run resumes at batch %d\n", cp.Batch, cp.Batch+1)
		first = cp.Batch + 1
	}
	for b := first; b <= batches; b++ {
		lo := (b-1)*cfg.batchSize + 1
		fmt.Fprintf(w, "  batch %d: traveler_id %d..%d\n", b, lo, min(expected, b*cfg.batchSize))
	}
	return nil
}

// openReadOnly opens the database for reading only; nil when it is a
// SQLite file that does not exist yet.
func openReadOnly(ctx context.Context, cfg config) (*sqlx.DB, error) {
	if cfg.driver != "sqlite" {
		return openDB(ctx, cfg)
	}
	if _, err := os.Stat(cfg.sqlitePath); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	// Without a -wal file every committed transaction is in the file, and
	// immutable reads it creating nothing. With one, SQLite needs the
	// -wal and -shm files, which are there already.
	_, walErr := os.Stat(cfg.sqlitePath + "-wal")
	cfg.dsn = sqliteReadOnlyDSN(cfg.sqlitePath, errors.Is(walErr, os.ErrNotExist))
	return openDB(ctx, cfg)
}

// loadCheckpoint reads the run's checkpoint, a zero one if there is no
// checkpoint table yet. It reads the row itself rather than through
// CheckpointStore.Load, which may first add columns to an older table: a
// dry run writes nothing.
func loadCheckpoint(ctx context.Context, db *sqlx.DB, runKey string) (batchenrich.Checkpoint, error) {
	cp := batchenrich.Checkpoint{RunKey: runKey}
	cols, _, exists, err := describeTable(ctx, db, sqlbatch.DefaultCheckpointTable)
	if err != nil || !exists {
		return cp, err
	}
	// The shape columns, where the table has them (an older table has
	// not: its checkpoints recorded no shape).
	q := `SELECT batch, done`
	for _, c := range cols {
		switch c.Name {
		case "partitions":
			q += `, COALESCE(partitions, 0) AS partitions`
		case "batch_size", "fingerprint":
			q += `, ` + c.Name
		}
	}
	var row struct {
		Batch       int    `db:"batch"`
		Done        bool   `db:"done"`
		Partitions  int    `db:"partitions"`
		BatchSize   int    `db:"batch_size"`
		Fingerprint string `db:"fingerprint"`
	}
	err = db.GetContext(ctx, &row, db.Rebind(q+` FROM `+sqlbatch.DefaultCheckpointTable+` WHERE run_key = ?`), runKey)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return cp, nil
	case err != nil:
		return cp, fmt.Errorf("read checkpoint: %w", err)
	}
	cp.Batch, cp.Done = row.Batch, row.Done
	cp.Partitions, cp.BatchSize, cp.Fingerprint = row.Partitions, row.BatchSize, row.Fingerprint
	return cp, nil
}

// loaded is a CheckpointStore holding the checkpoint the dry run read
// (without changing the database) for batchenrich.CheckResume, which only
// loads it for an unpartitioned run.
type loaded batchenrich.Checkpoint

// Load returns the checkpoint read.
func (c loaded) Load(context.Context, string) (batchenrich.Checkpoint, error) {
	return batchenrich.Checkpoint(c), nil
}

// Save refuses: a dry run changes nothing.
func (loaded) Save(context.Context, batchenrich.Checkpoint) error {
	return errors.New("a dry run saves no checkpoint")
}
