package crashtest

import (
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/batchenrich/batchenrich/internal/testdb"
)

// A SIGKILLed child's PostgreSQL session outlives it for a moment: a
// COMMIT the server had received before the kill still completes after
// the child is reaped, when the server notices the closed socket. A test
// reading the database right after the kill can see the state before that
// commit and, read again, the state after it (a checkpoint at c+1 where it
// saw c). So the random-kill tests name their children's sessions and,
// after each kill, wait until none is left before they read.

// tagSessions returns dsn with an application_name of its own, and that
// name; on SQLite, where a dead process commits nothing more, dsn as it
// is.
func tagSessions(t testing.TB, k testdb.Kind, dsn string) (string, string) {
	t.Helper()
	if k != testdb.PostgreSQL {
		return dsn, ""
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	app := "crashtest-" + hex.EncodeToString(b[:])
	q := u.Query()
	q.Set("application_name", app)
	u.RawQuery = q.Encode()
	return u.String(), app
}

// waitSessionsGone waits until no PostgreSQL session named app is left.
func waitSessionsGone(t testing.TB, db *sqlx.DB, app string) {
	t.Helper()
	if app == "" {
		return
	}
	start := time.Now()
	deadline := start.Add(waitLimit)
	for i := 0; ; i++ {
		var n int
		if err := db.Get(&n, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`, app); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			if i > 0 {
				t.Logf("a killed child's session lasted %s after the child was reaped", time.Since(start).Round(time.Millisecond))
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions of killed children (%s) still open after %s", n, app, waitLimit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
