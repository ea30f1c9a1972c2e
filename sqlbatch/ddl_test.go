package sqlbatch_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jmoiron/sqlx"
	"golang.org/x/sync/errgroup"

	"github.com/batchenrich/batchenrich/internal/sqldialect"
	"github.com/batchenrich/batchenrich/internal/testdb"
	"github.com/batchenrich/batchenrich/sqlbatch"
)

// Several processes creating the same tables at the same instant on a
// fresh database: every one of them succeeds (on PostgreSQL, concurrent
// CREATE TABLE IF NOT EXISTS alone fails with a unique violation on
// pg_type_typname_nsp_index now and then).
func TestExecDDLConcurrent(t *testing.T) {
	forEachDriver(t, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
		const creators, rounds = 6, 15
		db.SetMaxOpenConns(creators + 1)
		atOnce(t, creators, rounds, func(round int) (func() error, error) {
			return func() error {
				return sqlbatch.ExecDDL(context.Background(), db,
					fmt.Sprintf(`CREATE TABLE IF NOT EXISTS ddl_%d (id BIGINT PRIMARY KEY, v TEXT)`, round),
					fmt.Sprintf(`CREATE INDEX IF NOT EXISTS ddl_%d_v ON ddl_%d (v)`, round, round))
			}, nil
		})
	})
}

// CreateTable from several stores at once on a fresh database succeeds
// for every one of them.
func TestCreateTableConcurrent(t *testing.T) {
	forEachDB(t, func(t *testing.T, k testdb.Kind, db *sqlx.DB) {
		const creators, rounds = 6, 10
		db.SetMaxOpenConns(creators + 1)
		atOnce(t, creators, rounds, func(round int) (func() error, error) {
			s, err := sqlbatch.NewCheckpointStore(db, sqlbatch.CheckpointConfig{Table: fmt.Sprintf("cp_%d", round)})
			if err != nil {
				return nil, err
			}
			return func() error { return s.CreateTable(context.Background()) }, nil
		})
	})
}

// atOnce runs rounds rounds of creators goroutines. In round r, each
// calls setup(r), and then, all released together, the function it
// returned. The test fails at the first round with an error.
func atOnce(t *testing.T, creators, rounds int, setup func(round int) (func() error, error)) {
	t.Helper()
	for round := range rounds {
		var g errgroup.Group
		start := make(chan struct{})
		for range creators {
			g.Go(func() error {
				create, err := setup(round)
				if err != nil {
					return err
				}
				<-start
				return create()
			})
		}
		close(start)
		if err := g.Wait(); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
	}
}

func TestDDLLockKey(t *testing.T) {
	if got := sqldialect.LockKey(sqlbatch.DDLLockKeyName); got != sqlbatch.DDLLockKey {
		t.Fatalf("DDLLockKey = %d, LockKey(%q) = %d", sqlbatch.DDLLockKey, sqlbatch.DDLLockKeyName, got)
	}
}
