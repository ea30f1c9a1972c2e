package main

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/batchenrich/batchenrich/redact"
)

// errDSNKind is -dsn's answer to a value it cannot place. It never repeats
// the value: a password pasted alone would be shown.
var errDSNKind = errors.New("-dsn: not a PostgreSQL URL (postgres://…), a keyword connection string (host=… dbname=…) " +
	"or an existing SQLite file (a path, or file:path)")

// database is where the checkpoint table is: the driver and DSN to open
// it with, and its description for people, secrets masked.
type database struct {
	driver, dsn, desc string
}

// resolveDSN places d:
//
//   - postgres:// or postgresql:// URLs and libpq keyword strings
//     (host=… user=… dbname=…) are PostgreSQL (driver lib/pq);
//   - file: and sqlite: URIs, and any other value naming an existing
//     file, are SQLite files, opened for reading and writing but never
//     created (a misspelt path is refused, not made into an empty
//     database);
//   - anything else is refused.
//
// Its errors never show d: it may hold a password.
func resolveDSN(d string) (database, error) {
	lower := strings.ToLower(d)
	switch {
	case d == "":
		return database{}, errors.New("-dsn: required (or $DATABASE_URL): the database holding the checkpoint table")
	case strings.HasPrefix(lower, "postgres://") || strings.HasPrefix(lower, "postgresql://"):
		if _, err := url.Parse(d); err != nil {
			// The parser's message can hold part of the password.
			return database{}, errors.New("-dsn: not a valid PostgreSQL URL (percent-encode any '/', '?', '#', '@' or ':' in the user name or password)")
		}
		return database{driver: "postgres", dsn: d, desc: "PostgreSQL " + redact.String(d)}, nil
	case redact.IsKeywordDSN(d):
		if _, err := redact.ParseKeywords(d); err != nil {
			return database{}, fmt.Errorf("-dsn: not a valid keyword connection string: %w", err)
		}
		return database{driver: "postgres", dsn: d, desc: "PostgreSQL " + redact.String(d)}, nil
	case strings.Contains(d, "://") && !strings.HasPrefix(lower, "sqlite://") && !strings.HasPrefix(lower, "file://"):
		scheme, _, _ := strings.Cut(d, "://")
		if len(scheme) > 20 || strings.ContainsAny(scheme, "@:/ ") {
			return database{}, errDSNKind
		}
		return database{}, fmt.Errorf("-dsn: unsupported scheme %q (use postgres://…, a keyword string or a SQLite file path)", scheme)
	}
	path := d
	switch {
	case strings.HasPrefix(lower, "sqlite://"):
		path = d[len("sqlite://"):]
	case strings.HasPrefix(lower, "file://"):
		path = d[len("file://"):]
	case strings.HasPrefix(lower, "sqlite:"), strings.HasPrefix(lower, "file:"):
		path = d[strings.IndexByte(d, ':')+1:]
	}
	if path != d {
		if i := strings.IndexByte(path, '?'); i >= 0 {
			path = path[:i] // our own parameters replace the URI's
		}
		if p, err := url.PathUnescape(path); err == nil {
			path = p
		}
	}
	if path == "" || strings.ContainsAny(path, "\x00\r\n") {
		return database{}, errDSNKind
	}
	fi, err := os.Stat(path)
	switch {
	case err == nil && fi.Mode().IsRegular():
	case err == nil:
		return database{}, fmt.Errorf("-dsn: %s is not a SQLite file", quoted(path))
	case path != d || looksLikePath(path):
		// A file: URI, or a value that reads as a path: it names a
		// file, which is missing.
		return database{}, fmt.Errorf("-dsn: SQLite file %s: %w", quoted(path), errors.Unwrap(err))
	default:
		return database{}, errDSNKind
	}
	return database{driver: "sqlite", dsn: sqliteDSN(path), desc: "SQLite file " + quoted(path)}, nil
}

// looksLikePath reports whether p reads as a file path rather than, say,
// a password pasted alone: it has a separator or a SQLite file's
// extension.
func looksLikePath(p string) bool {
	if strings.ContainsRune(p, os.PathSeparator) || strings.ContainsRune(p, '/') {
		return true
	}
	for _, ext := range []string{".db", ".db3", ".sqlite", ".sqlite3"} {
		if strings.HasSuffix(strings.ToLower(p), ext) {
			return true
		}
	}
	return false
}

// sqliteDSN opens the existing file at path for reading and writing
// (mode=rw: never created), waiting up to 10 s for a runner's write lock.
func sqliteDSN(path string) string {
	return "file:" + strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path) + "?mode=rw&_pragma=busy_timeout(10000)"
}
