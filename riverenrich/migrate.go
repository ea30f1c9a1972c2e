package riverenrich

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"

	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/rivermigrate"
)

// Migrate applies River's schema migrations (rivermigrate, up to the
// version of the River this module requires) to db, in schema (empty: the
// search_path). Processes starting at once on a fresh database may all
// call it: a PostgreSQL advisory lock makes them take turns, and the
// later ones find nothing left to do.
func Migrate(ctx context.Context, db *sql.DB, schema string) (err error) {
	m, err := rivermigrate.New(riverdatabasesql.New(db), &rivermigrate.Config{Schema: schema})
	if err != nil {
		return fmt.Errorf("riverenrich: migrate: %w", err)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("riverenrich: migrate: %w", err)
	}
	defer conn.Close()
	key := lockKey("riverenrich:migrate:" + schema)
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, key); err != nil {
		return fmt.Errorf("riverenrich: migrate: lock: %w", err)
	}
	defer func() {
		if _, uerr := conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, key); uerr != nil {
			err = errors.Join(err, fmt.Errorf("riverenrich: migrate: unlock: %w", uerr))
		}
	}()
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("riverenrich: migrate: %w", err)
	}
	return nil
}

// lockKey is the PostgreSQL advisory lock key of name: its FNV-1a hash, as
// the root module's lock keys are made (its internal sqldialect.LockKey,
// which another module may not import).
func lockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return int64(h.Sum64())
}
