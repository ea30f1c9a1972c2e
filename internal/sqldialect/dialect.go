// Package sqldialect holds what differs between the SQL databases sqlbatch
// supports: how a driver name maps to a dialect, how identifiers are
// validated and quoted, placeholders, parameter limits, upsert syntax and
// column types. Nothing else in sqlbatch spells dialect-specific SQL.
package sqldialect

import (
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
)

// Kind names a supported database.
type Kind int

// The supported databases.
const (
	PostgreSQL Kind = iota + 1
	SQLite
)

// String returns the dialect's name.
func (k Kind) String() string {
	switch k {
	case PostgreSQL:
		return "postgres"
	case SQLite:
		return "sqlite"
	default:
		return "unknown"
	}
}

// ErrUnsupportedDriver is returned by Detect for a driver name it does not
// know.
var ErrUnsupportedDriver = errors.New("unsupported database driver")

// Dialect describes one database.
type Dialect struct {
	Kind Kind
	// PGX is set for PostgreSQL through pgx's database/sql driver, which
	// does COPY through its own connection type, not a statement.
	PGX bool
}

// Detect returns the dialect of the database/sql driver registered as
// driverName: "postgres" (lib/pq) and "pgx" or "pgx/v5"
// (github.com/jackc/pgx/v5/stdlib) are PostgreSQL, "sqlite"
// (modernc.org/sqlite) and "sqlite3" (mattn/go-sqlite3) are SQLite.
func Detect(driverName string) (Dialect, error) {
	switch driverName {
	case "postgres":
		return Dialect{Kind: PostgreSQL}, nil
	case "pgx", "pgx/v5":
		return Dialect{Kind: PostgreSQL, PGX: true}, nil
	case "sqlite", "sqlite3":
		return Dialect{Kind: SQLite}, nil
	case "":
		return Dialect{}, fmt.Errorf("%w: empty driver name (was the *sqlx.DB made with sqlx.NewDb or sqlx.Open?)", ErrUnsupportedDriver)
	default:
		return Dialect{}, fmt.Errorf("%w %q (want \"postgres\", \"pgx\", \"sqlite\" or \"sqlite3\")", ErrUnsupportedDriver, driverName)
	}
}

// MaxParams is the number of bound parameters one statement may carry:
// 65,535 for PostgreSQL's wire protocol, 32,766 for SQLite since 3.32.
func (d Dialect) MaxParams() int {
	if d.Kind == PostgreSQL {
		return 65535
	}
	return 32766
}

// Upsert returns an INSERT of rows rows into table (already quoted) that
// updates the non-key columns of a row whose key already exists. cols and
// key are quoted column names; key must be covered by a unique index or
// primary key. Placeholders are '?': pass the result through Rebind.
func (d Dialect) Upsert(table string, cols, key []string, rows int) string {
	return d.Insert(table, cols, rows) + d.OnConflict(cols, key)
}

// Insert returns an INSERT of rows rows into table (already quoted), with
// no conflict clause: append one (OnConflict) for an upsert. cols are
// quoted column names. Placeholders are '?': pass the result through
// Rebind.
func (d Dialect) Insert(table string, cols []string, rows int) string {
	var b strings.Builder
	b.WriteString("INSERT INTO ")
	b.WriteString(table)
	b.WriteString(" (")
	b.WriteString(strings.Join(cols, ", "))
	b.WriteString(") VALUES ")
	tuple := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + ")"
	b.Grow(rows * (len(tuple) + 2))
	for i := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(tuple)
	}
	return b.String()
}

// OnConflict returns the " ON CONFLICT (key) DO UPDATE SET c = excluded.c,
// …" clause for the columns of cols not in key, or DO NOTHING when every
// column is a key column. PostgreSQL and SQLite (3.24 and later) spell it
// the same way.
func (d Dialect) OnConflict(cols, key []string) string {
	var b strings.Builder
	b.WriteString(" ON CONFLICT (")
	b.WriteString(strings.Join(key, ", "))
	b.WriteString(") DO ")
	isKey := make(map[string]bool, len(key))
	for _, k := range key {
		isKey[k] = true
	}
	n := 0
	for _, c := range cols {
		if isKey[c] {
			continue
		}
		if n == 0 {
			b.WriteString("UPDATE SET ")
		} else {
			b.WriteString(", ")
		}
		n++
		b.WriteString(c)
		b.WriteString(" = excluded.")
		b.WriteString(c)
	}
	if n == 0 {
		b.WriteString("NOTHING")
	}
	return b.String()
}

// After returns the condition "rows after the given key" for keyset
// paging: k > ? for one column, (k1, k2) > (?, ?) for several. Both
// databases compare row values lexicographically (SQLite since 3.15), and
// PostgreSQL uses a matching index for it.
func (d Dialect) After(key []string) string {
	if len(key) == 1 {
		return key[0] + " > ?"
	}
	return "(" + strings.Join(key, ", ") + ") > (" + strings.TrimSuffix(strings.Repeat("?, ", len(key)), ", ") + ")"
}

// Column types used by the tables sqlbatch creates itself.
func (d Dialect) TypeText() string { return "TEXT" }

// TypeBigInt is a 64-bit integer column type.
func (d Dialect) TypeBigInt() string {
	if d.Kind == PostgreSQL {
		return "BIGINT"
	}
	return "INTEGER"
}

// TypeBool is a boolean column type (an integer 0/1 in SQLite).
func (d Dialect) TypeBool() string {
	if d.Kind == PostgreSQL {
		return "BOOLEAN"
	}
	return "INTEGER"
}

// TypeTimestamp is a timestamp column type.
func (d Dialect) TypeTimestamp() string {
	if d.Kind == PostgreSQL {
		return "TIMESTAMPTZ"
	}
	return "DATETIME"
}

// LockKey hashes name into the 64-bit key of a PostgreSQL advisory lock
// (FNV-1a, stable across processes and versions, unlike hashtext).
func LockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return int64(h.Sum64())
}
