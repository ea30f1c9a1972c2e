package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/batchenrich/batchenrich/internal/sqldialect"
	"github.com/batchenrich/batchenrich/sqlbatch"
	"github.com/jmoiron/sqlx"
)

// appName is this process's PostgreSQL application_name, so that a
// refused twin can say which process holds its run.
func appName() string { return appNameOf(os.Getpid()) }

// appNameOf is the application_name of the process pid.
func appNameOf(pid int) string { return "travelers pid " + strconv.Itoa(pid) }

// withAppName sets fallback_application_name on a PostgreSQL DSN (a URL
// or a keyword string); an application_name the user set wins.
func withAppName(dsn string) string {
	if strings.Contains(dsn, "://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return dsn
		}
		q := u.Query()
		q.Set("fallback_application_name", appName())
		u.RawQuery = q.Encode()
		return u.String()
	}
	if strings.HasSuffix(dsn, `\`) {
		return dsn // a trailing backslash would escape the space we add
	}
	return dsn + " fallback_application_name='" + appName() + "'"
}

// runHolder describes who holds the lock on runKey, for the one line a
// refused twin prints; "" when it cannot tell (the holder just finished).
func runHolder(ctx context.Context, db *sqlx.DB, runKey string) string {
	if db.DriverName() == "sqlite" {
		var expires *int64
		err := db.GetContext(ctx, &expires, `SELECT lock_expires_at FROM `+sqlbatch.DefaultCheckpointTable+` WHERE run_key = ?`, runKey)
		if err != nil || expires == nil {
			return ""
		}
		return "a runner that holds its lease until " + time.UnixMilli(*expires).UTC().Format(time.TimeOnly) +
			" UTC (renewed while it runs; a runner that died frees it then)"
	}
	// sqlbatch keys the session advisory lock by the checkpoint table's oid
	// and the run key (see CheckpointStore).
	var oid int64
	if err := db.GetContext(ctx, &oid, `SELECT $1::regclass::oid::bigint`, sqlbatch.DefaultCheckpointTable); err != nil {
		return ""
	}
	key := sqldialect.LockKey("batchenrich:" + strconv.FormatInt(oid, 10) + ":" + runKey)
	var h struct {
		PID    int64     `db:"pid"`
		App    string    `db:"app"`
		Client string    `db:"client"`
		Since  time.Time `db:"since"`
	}
	err := db.GetContext(ctx, &h, `SELECT a.pid, COALESCE(a.application_name, '') AS app,
			COALESCE(host(a.client_addr), 'a local socket') AS client, a.backend_start AS since
		FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
			AND l.classid = $1::bigint::oid AND l.objid = $2::bigint::oid
			AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
		LIMIT 1`, int64(uint32(uint64(key)>>32)), int64(uint32(key)))
	if err != nil {
		return ""
	}
	who := "PostgreSQL session " + strconv.FormatInt(h.PID, 10)
	if h.App != "" {
		who = fmt.Sprintf("%q (%s", h.App, who)
	} else {
		who = "(" + who
	}
	return who + " from " + h.Client + ", connected since " + h.Since.UTC().Format(time.DateTime) + " UTC)"
}
