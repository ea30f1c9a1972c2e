package sqlbatch_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
)

// terminateBackend ends PostgreSQL backend pid (a runner's lock session)
// and waits until it is gone, and its advisory lock with it:
// pg_terminate_backend only signals the backend.
func terminateBackend(t testing.TB, db *sqlx.DB, pid int64) {
	t.Helper()
	mustExec(t, db, `SELECT pg_terminate_backend($1)`, pid)
	for i := 0; ; i++ {
		var n int
		if err := db.Get(&n, `SELECT count(*) FROM pg_stat_activity WHERE pid = $1`, pid); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if i == 1000 {
			t.Fatalf("backend %d still alive after pg_terminate_backend", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// openSQLite opens the SQLite database at path as the runners do (WAL,
// immediate transactions) with a busy timeout of busyMS milliseconds,
// closed when t ends.
func openSQLite(t testing.TB, path string, busyMS int) *sqlx.DB {
	t.Helper()
	db, err := sqlx.Open("sqlite", fmt.Sprintf("file:%s?_pragma=busy_timeout(%d)&_pragma=journal_mode(WAL)&_txlock=immediate", path, busyMS))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
