package main

import (
	"context"
	"fmt"

	"github.com/batchenrich/batchenrich/examples/travelers/seedjob"
	"github.com/batchenrich/batchenrich/sqlbatch"
	"github.com/jmoiron/sqlx"
)

// createTables creates the fixture (seedjob.Schema)'s tables and the checkpoint table if
// they are missing. sqlbatch.ExecDDL serialises it with every other
// process doing the same, so that two first runs at once on a fresh
// PostgreSQL database both succeed.
func createTables(ctx context.Context, db *sqlx.DB, store *sqlbatch.CheckpointStore) error {
	if err := sqlbatch.ExecDDL(ctx, db, seedjob.Schema(db.DriverName())...); err != nil {
		return fmt.Errorf("create tables: %w", err)
	}
	if err := store.CreateTable(ctx); err != nil {
		return fmt.Errorf("create tables: %w", err)
	}
	return nil
}
