// Package testdb gives tests a fresh database of each kind batchenrich
// supports: PostgreSQL (from BATCHENRICH_TEST_DATABASE_URL, one new schema
// per test) and SQLite (a new file per test).
package testdb

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx" for tests
	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq"  // registers "postgres" for tests
	_ "modernc.org/sqlite" // registers "sqlite" for tests
)

// EnvVar names the PostgreSQL connection URL the tests use.
const EnvVar = "BATCHENRICH_TEST_DATABASE_URL"

// Kind names a supported database.
type Kind string

// The supported databases.
const (
	PostgreSQL Kind = "postgres" // through lib/pq
	SQLite     Kind = "sqlite"
	PGX        Kind = "pgx" // PostgreSQL through github.com/jackc/pgx/v5/stdlib
)

// Kinds lists the databases to run a suite against: SQLite always,
// PostgreSQL too (the test skips itself when EnvVar is unset).
var Kinds = []Kind{SQLite, PostgreSQL}

// AllKinds is Kinds with PostgreSQL through pgx too.
var AllKinds = []Kind{SQLite, PostgreSQL, PGX}

// Postgres reports whether k is PostgreSQL, through either driver.
func (k Kind) Postgres() bool { return k == PostgreSQL || k == PGX }

// Open returns a fresh, empty database of kind k, closed and removed when
// the test ends.
func Open(t testing.TB, k Kind) *sqlx.DB {
	t.Helper()
	switch k {
	case PostgreSQL:
		return Postgres(t)
	case PGX:
		db, _ := postgresWith(t, "pgx")
		return db
	case SQLite:
		return SQLiteDB(t)
	}
	t.Fatalf("testdb: unknown kind %q", k)
	return nil
}

// PostgresURL returns EnvVar's value, skipping the test when it is unset.
func PostgresURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvVar)
	if u == "" {
		t.Skipf("PostgreSQL tests skipped: set %s (e.g. postgres://postgres@127.0.0.1:5432/batchenrich_test?sslmode=disable)", EnvVar)
	}
	return u
}

// Postgres returns a connection to a new schema of the database at
// EnvVar, with search_path set to it; the schema is dropped when the test
// ends. The test skips when EnvVar is unset and fails when the database
// cannot be reached.
func Postgres(t testing.TB) *sqlx.DB {
	t.Helper()
	db, _ := PostgresWithURL(t)
	return db
}

// PostgresWithURL is Postgres, also returning a connection URL that
// reaches the same schema (for child processes).
func PostgresWithURL(t testing.TB) (*sqlx.DB, string) {
	t.Helper()
	return postgresWith(t, "postgres")
}

// postgresWith is PostgresWithURL through the named driver.
func postgresWith(t testing.TB, driver string) (*sqlx.DB, string) {
	t.Helper()
	base := PostgresURL(t)
	admin, err := sqlx.Open("postgres", base)
	if err != nil {
		t.Fatalf("testdb: %s: %v", EnvVar, err)
	}
	defer admin.Close()
	if err := pingWithin(admin, 5*time.Second); err != nil {
		t.Fatalf("testdb: %s is set but PostgreSQL cannot be reached: %v", EnvVar, err)
	}
	schema := "t_" + randomHex(6)
	if _, err := admin.Exec(`CREATE SCHEMA ` + schema); err != nil {
		t.Fatalf("testdb: create schema: %v", err)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("testdb: %s: %v", EnvVar, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	dsn := u.String()
	db, err := sqlx.Open(driver, dsn)
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	t.Cleanup(func() {
		db.Close()
		a, err := sqlx.Open("postgres", base)
		if err != nil {
			t.Errorf("testdb: cleanup: %v", err)
			return
		}
		defer a.Close()
		if _, err := a.Exec(`DROP SCHEMA ` + schema + ` CASCADE`); err != nil {
			t.Errorf("testdb: drop schema %s: %v", schema, err)
		}
	})
	return db, dsn
}

// SQLiteDB returns a new SQLite database in a file of the test's temporary
// directory, in WAL mode with a busy timeout.
func SQLiteDB(t testing.TB) *sqlx.DB {
	t.Helper()
	db, _ := SQLiteWithDSN(t)
	return db
}

// SQLiteWithDSN is SQLiteDB, also returning its DSN (for child processes).
func SQLiteWithDSN(t testing.TB) (*sqlx.DB, string) {
	t.Helper()
	dsn := SQLiteDSN(filepath.Join(t.TempDir(), "test.db"))
	db, err := sqlx.Open("sqlite", dsn)
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	if err := db.Ping(); err != nil {
		t.Fatalf("testdb: sqlite: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db, dsn
}

// SQLiteDSN returns the modernc.org/sqlite DSN batchenrich recommends for
// the file at path: WAL journal, a 10 s busy timeout, foreign keys on.
func SQLiteDSN(path string) string {
	return "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_txlock=immediate"
}

func pingWithin(db *sqlx.DB, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		err := db.Ping()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		if strings.Contains(err.Error(), "does not exist") {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("testdb: crypto/rand: %v", err))
	}
	return hex.EncodeToString(b)
}
