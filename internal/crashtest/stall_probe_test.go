//go:build unix

package crashtest

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
)

// stopOutsideWrite stops p with SIGSTOP at an instant it holds no SQLite
// write lock. Paused in an enrichment, the child still renews its lease in
// the background, every LeaseTTL/3; a SIGSTOP landing in that short write
// would freeze the database's write lock with it, and no other runner
// could write anything (not even take the expired lease) until the child
// is resumed. So the test probes the lock with a BEGIN IMMEDIATE that
// does not wait, and, if it is held, lets the child finish its write and
// stops it again.
func stopOutsideWrite(t testing.TB, p *proc, dsn string) {
	t.Helper()
	probe, err := sqlx.Open("sqlite", strings.Replace(dsn, "busy_timeout(10000)", "busy_timeout(0)", 1))
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	for i := 0; ; i++ {
		if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		tx, err := probe.Beginx() // BEGIN IMMEDIATE (_txlock=immediate)
		if err == nil {
			_ = tx.Rollback()
			if i > 0 {
				t.Logf("%s: stopped %d times before it held no SQLite write lock", p.name, i+1)
			}
			return
		}
		if i == 100 {
			t.Fatalf("%s: still holding the SQLite write lock after %d stops: %v", p.name, i+1, err)
		}
		if err := p.cmd.Process.Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
