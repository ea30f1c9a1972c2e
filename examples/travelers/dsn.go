package main

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/batchenrich/batchenrich/examples/travelers/seedjob"
	"github.com/batchenrich/batchenrich/redact"
)

const defaultSQLiteFile = "travelers.db"

// errDSNKind is -dsn's answer to a value it cannot place. It never repeats
// the value: a password pasted alone would be shown.
var errDSNKind = errors.New("-dsn: not a PostgreSQL URL (postgres://…), a keyword connection string (host=… dbname=…) " +
	"or a SQLite file (an absolute path, ./x, a name ending in .db, .db3, .sqlite or .sqlite3, or file:x.db)")

// resolveDSN picks the driver for c.dsn and describes the database for
// people, its secrets masked:
//
//   - postgres:// or postgresql:// URLs and libpq keyword strings
//     (host=… user=… dbname=…) are PostgreSQL;
//   - file:, sqlite: and sqlite:// URIs, absolute paths, paths starting
//     with ./ or ../, and names ending in .db, .db3, .sqlite or .sqlite3
//     are SQLite files;
//   - anything else is refused, rather than taken for a file name.
func (c *config) resolveDSN() error {
	d := c.dsn
	lower := strings.ToLower(d)
	switch {
	case d == "":
		abs, err := filepath.Abs(defaultSQLiteFile)
		if err != nil {
			return fmt.Errorf("-dsn: %w", err)
		}
		c.setSQLite(abs)
	case strings.HasPrefix(lower, "postgres://") || strings.HasPrefix(lower, "postgresql://"):
		if _, err := url.Parse(d); err != nil {
			// The parser's message can hold part of the password.
			return errors.New("-dsn: not a valid PostgreSQL URL (percent-encode any '/', '?', '#', '@' or ':' in the user name or password)")
		}
		c.driver, c.dbDesc = "postgres", "PostgreSQL "+redact.String(d)
	case redact.IsKeywordDSN(d):
		if _, err := redact.ParseKeywords(d); err != nil {
			return fmt.Errorf("-dsn: not a valid keyword connection string: %w", err)
		}
		c.driver, c.dbDesc = "postgres", "PostgreSQL "+redact.String(d)
	case strings.HasPrefix(lower, "sqlite:"), strings.HasPrefix(lower, "file:"):
		path := d[strings.IndexByte(d, ':')+1:]
		if strings.HasPrefix(lower, "sqlite://") {
			path = d[len("sqlite://"):]
		}
		if i := strings.IndexByte(path, '?'); i >= 0 {
			path = path[:i] // our own parameters replace the URI's
		}
		if path == "" {
			return errors.New("-dsn: no SQLite file path after the scheme")
		}
		if p, err := url.PathUnescape(path); err == nil {
			path = p
		}
		c.setSQLite(path)
	case strings.Contains(d, "://"):
		scheme, _, _ := strings.Cut(d, "://")
		if len(scheme) > 20 || strings.ContainsAny(scheme, "@:/ ") {
			return errDSNKind
		}
		return fmt.Errorf("-dsn: unsupported scheme %q (use postgres://…, a keyword string or a SQLite file path)", scheme)
	case explicitSQLitePath(d):
		c.setSQLite(d)
	default:
		return errDSNKind
	}
	return nil
}

// explicitSQLitePath reports whether p reads as a file path: absolute,
// relative with ./ or ../, or named like a SQLite file.
func explicitSQLitePath(p string) bool {
	if strings.ContainsAny(p, "\x00\r\n") {
		return false
	}
	if filepath.IsAbs(p) || strings.HasPrefix(p, "./") || strings.HasPrefix(p, "../") {
		return true
	}
	switch strings.ToLower(filepath.Ext(p)) {
	case ".db", ".sqlite", ".sqlite3", ".db3":
		return true
	}
	return false
}

func (c *config) setSQLite(path string) {
	c.driver, c.dbDesc, c.sqlitePath, c.dsn = "sqlite", "SQLite file "+path, path, sqliteDSN(path)
}

// sqliteDSN opens path with WAL, a busy timeout and immediate write
// transactions, as sqlbatch recommends.
func sqliteDSN(path string) string {
	return sqliteURI(path) + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_txlock=immediate"
}

// sqliteReadOnlyDSN opens path for reading only. immutable tells SQLite
// that nothing changes the file meanwhile, so it takes no lock and creates
// no -wal or -shm file (and so works for a user who may only read): use it
// only when no -wal file exists, when the file holds every committed
// transaction.
func sqliteReadOnlyDSN(path string, immutable bool) string {
	q := "?mode=ro&_pragma=busy_timeout(10000)"
	if immutable {
		q += "&immutable=1"
	}
	return sqliteURI(path) + q
}

// sqliteURI is a file: URI naming path, with the characters a URI would
// read otherwise escaped.
func sqliteURI(path string) string {
	return "file:" + strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
}

// statusCommand is the command that shows the run's state from a shell
// (cmd/batchenrich), its secrets masked.
func statusCommand(cfg config, getenv func(string) string) string {
	if cfg.driver == "sqlite" {
		return seedjob.StatusCommand(cfg.sqlitePath, false, cfg.executionID)
	}
	return seedjob.StatusCommand(cfg.dsn, cfg.dsn == getenv("DATABASE_URL"), cfg.executionID)
}
