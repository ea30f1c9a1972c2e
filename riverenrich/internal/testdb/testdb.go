// Package testdb gives riverenrich's tests a fresh PostgreSQL schema each,
// in the database at BATCHENRICH_TEST_DATABASE_URL. It is the PostgreSQL
// part of the root module's internal/testdb, copied because a module never
// imports another module's internal packages.
package testdb

import (
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq" // registers "postgres" for tests
)

// EnvVar names the PostgreSQL connection URL the tests use.
const EnvVar = "BATCHENRICH_TEST_DATABASE_URL"

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
	base := os.Getenv(EnvVar)
	if base == "" {
		t.Skipf("PostgreSQL tests skipped: set %s (e.g. postgres://postgres@127.0.0.1:5432/batchenrich_test?sslmode=disable)", EnvVar)
	}
	admin, err := sqlx.Open("postgres", base)
	if err != nil {
		t.Fatalf("testdb: %s: %v", EnvVar, err)
	}
	defer admin.Close()
	if err := pingWithin(admin, 5*time.Second); err != nil {
		t.Fatalf("testdb: %s is set but PostgreSQL cannot be reached: %v", EnvVar, err)
	}
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("testdb: crypto/rand: %v", err)
	}
	schema := "t_" + hex.EncodeToString(b)
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
	db, err := sqlx.Open("postgres", dsn)
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
