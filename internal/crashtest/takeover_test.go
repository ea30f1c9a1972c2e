package crashtest

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/batchenrich/batchenrich/internal/testdb"
)

// TestSQLiteTakeoverAfterKill kills the holder of a SQLite run lock with
// SIGKILL, under the default 30 s lease, and runs again at once without
// LockWait: the new runner sees that the lease's holder, a process of
// this host, is dead (its OS lock beside the database file is free), and
// resumes after the committed batch instead of failing with ErrRunLocked
// for up to 30 s. A live holder still locks a runner out, and the error
// names its host and pid.
func TestSQLiteTakeoverAfterKill(t *testing.T) {
	t.Parallel()
	db, cfg := childSetup(t, testdb.SQLite)
	cfg.LeaseTTL = 0 // the default, 30 s

	hcfg := cfg
	hcfg.PauseAt, hcfg.PauseBatch = pauseEnrich, 2
	holder := startChild(t, "holder", hcfg)
	holder.waitLine("paused enrich 2")

	locked := startChild(t, "no-wait runner, holder alive", cfg)
	locked.finish(exitLocked)
	host, _ := os.Hostname()
	want := "lock: held by pid " + strconv.Itoa(holder.cmd.Process.Pid) + " on host " + host + ", alive"
	if all := locked.stderr.String(); !strings.Contains(all, want) {
		t.Fatalf("locked-out runner said %q, want it to name the holder: %q", all, want)
	}

	holder.kill()
	killed := time.Now()
	next := startChild(t, "no-wait runner, holder killed", cfg)
	rep := next.finish(exitOK)
	total := batchesOf(nItems, batchSize)
	if rep.BatchesSkipped != 1 || rep.BatchesRun != total-1 {
		t.Fatalf("next runner: skipped %d, ran %d; want 1, %d", rep.BatchesSkipped, rep.BatchesRun, total-1)
	}
	checkCommitted(t, db, nItems, batchSize, total, true)
	t.Logf("FINDING sqlite, holder killed with SIGKILL under a 30 s lease: the next runner (no LockWait) took over at once and finished in %s", time.Since(killed).Round(time.Millisecond))
}
