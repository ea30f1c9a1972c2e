package sqlbatch

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/internal/sqldialect"
)

// Connections a run holds. A batchenrich.Runner asks its components what
// they take from their pools (batchenrich.ConnUser) and each pool whether
// it can give it (batchenrich.ConnUse.Pool), before any work. Per run (each
// partition of a split run, each replay), on the components' *sql.DB:
//   - a CheckpointStore on PostgreSQL: 1 for the run lock's session, held
//     for the whole run (SQLite's lock is a lease in a row: none);
//   - a Sink: 1 for a batch's transaction, which also saves the
//     checkpoint when the store is on the same database; a store on
//     another database saves on 1 of its own, after the write;
//   - a Source: 1 for its read-ahead, while a batch is written (with
//     Options.NoPrefetch it reads between writes, taking turns with them).
//
// So a run whose components share one PostgreSQL *sql.DB needs 3
// connections at once (2 on SQLite, 2 and 1 with NoPrefetch), and P
// partitions worked on in one process P times that. The pool is refused
// when SetMaxOpenConns caps it below the need and, on PostgreSQL, when
// the server cannot open the connections the pool lacks: its
// max_connections (less the reserved ones for a role that is no
// superuser), the role's CONNECTION LIMIT or the database's.

// connPool is the pool of a *sql.DB, as a batchenrich.ConnUse's Pool.
type connPool struct {
	db *sql.DB
	d  sqldialect.Dialect
}

// poolOf returns the pool of db.
func poolOf(db *sql.DB, d sqldialect.Dialect) connPool { return connPool{db: db, d: d} }

// ConnUse implements batchenrich.ConnUser: the Source holds 1 connection
// while it reads, at once with the Sink's write unless o.NoPrefetch.
func (s *Source[T]) ConnUse(o batchenrich.Options) []batchenrich.ConnUse {
	if o.NoPrefetch {
		return []batchenrich.ConnUse{{Pool: poolOf(s.db.DB, s.d), Conns: 1, Turns: true, For: "the Source's reads"}}
	}
	return []batchenrich.ConnUse{{Pool: poolOf(s.db.DB, s.d), Conns: 1, For: "the Source's read-ahead"}}
}

// ConnUse implements batchenrich.ConnUser: the Sink holds 1 connection
// for a batch's transaction.
func (s *Sink[T, R]) ConnUse(batchenrich.Options) []batchenrich.ConnUse {
	return []batchenrich.ConnUse{{Pool: poolOf(s.db.DB, s.d), Conns: 1, Turns: true, For: "a batch's transaction"}}
}

// ConnUse implements batchenrich.ConnUser: when it is the run's store,
// the CheckpointStore holds, on PostgreSQL, 1 connection for the run
// lock's session, and 1 in turn with the Sink's write to save a
// checkpoint (in the Sink's transaction when the Sink is on the same
// database).
func (s *CheckpointStore) ConnUse(o batchenrich.Options) []batchenrich.ConnUse {
	if o.Durable == nil || o.Durable.Store != batchenrich.CheckpointStore(s) {
		return nil
	}
	p := poolOf(s.db.DB, s.d)
	uses := []batchenrich.ConnUse{{Pool: p, Conns: 1, Turns: true, For: "a checkpoint's save"}}
	if s.d.Kind == sqldialect.PostgreSQL {
		uses = append(uses, batchenrich.ConnUse{Pool: p, Conns: 1, For: "the run lock's session"})
	}
	return uses
}

// CheckConns is the check of a batchenrich.ConnUse's Pool: it refuses, with a
// *ConfigError, a pool that SetMaxOpenConns caps below need.Conns, and on
// PostgreSQL a server that cannot open the connections the pool lacks
// (need.Conns less its idle ones), naming the limit and the minimum.
func (p connPool) CheckConns(ctx context.Context, need batchenrich.ConnUse) error {
	needs := "the run needs " + strconv.Itoa(need.Conns) + " connections at once (" + need.For + ")"
	if m := p.db.Stats().MaxOpenConnections; m > 0 && m < need.Conns {
		return configErr("db", fmt.Sprintf("SetMaxOpenConns(%d) is too small: %s; call SetMaxOpenConns(%d) or more", m, needs, need.Conns), nil)
	}
	if p.d.Kind != sqldialect.PostgreSQL {
		return nil
	}
	return p.checkServer(ctx, needs, need.Conns)
}

// serverQuery reads, in one round trip, the limits on the connections
// the session's role can open on its database, and the connections that
// count against each.
const serverQuery = `SELECT current_setting('max_connections')::int,
	current_setting('superuser_reserved_connections')::int + COALESCE(NULLIF(current_setting('reserved_connections', true), '')::int, 0),
	(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'),
	r.rolsuper, r.rolname, r.rolconnlimit,
	(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND usesysid = r.oid),
	d.datname, d.datconnlimit,
	(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND datid = d.oid)
FROM pg_roles r, pg_database d WHERE r.rolname = current_user AND d.datname = current_database()`

// checkServer refuses a server that cannot open the conns connections
// the run needs, less those idle in the pool.
func (p connPool) checkServer(ctx context.Context, needs string, conns int) error {
	var (
		maxConns, reserved, used, roleLimit, roleUsed, dbLimit, dbUsed int
		super                                                          bool
		role, dbName                                                   string
	)
	more := conns - p.db.Stats().OpenConnections // the pool's own serve the run
	if more <= 0 {
		return nil // no new connection needed: no round trip
	}
	err := p.db.QueryRowContext(ctx, serverQuery).Scan(&maxConns, &reserved, &used, &super, &role, &roleLimit, &roleUsed, &dbName, &dbLimit, &dbUsed)
	if err != nil {
		return fmt.Errorf("sqlbatch: read the server's connection limits: %w", err)
	}
	refuse := func(limit string, free, inUse int) error {
		return configErr("db", fmt.Sprintf("the server cannot open the connections the run needs: %s, of which the pool lacks %d, and %s allows %d more (%d in use); raise it, or work on fewer partitions at once",
			needs, more, limit, max(free, 0), inUse), nil)
	}
	if !super {
		maxConns -= reserved
		if roleLimit >= 0 && roleLimit-roleUsed < more {
			return refuse(fmt.Sprintf("role %q's CONNECTION LIMIT %d", role, roleLimit), roleLimit-roleUsed, roleUsed)
		}
		if dbLimit >= 0 && dbLimit-dbUsed < more {
			return refuse(fmt.Sprintf("database %q's CONNECTION LIMIT %d", dbName, dbLimit), dbLimit-dbUsed, dbUsed)
		}
	}
	if maxConns-used < more {
		limit := fmt.Sprintf("max_connections %d", maxConns+reserved)
		if !super && reserved > 0 {
			limit += fmt.Sprintf(" (%d reserved)", reserved)
		}
		return refuse(limit, maxConns-used, used)
	}
	return nil
}
