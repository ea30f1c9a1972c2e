//go:build unix

package crashtest

import (
	"syscall"
	"testing"

	"github.com/batchenrich/batchenrich/internal/testdb"
)

// TestStalledHolder freezes the lock holder with SIGSTOP in batch 2 (a
// process alive but not running: a long GC pause, a suspended VM), then
// lets it go on after another runner had its chance.
//
// On PostgreSQL the holder's session is still open, so it keeps the lock:
// another runner is refused with ErrRunLocked and the holder finishes the
// run. On SQLite its lease expires, another runner takes over and
// finishes the run, and the holder, woken up, is refused its commit
// (ErrLockLost): nothing is written twice.
func TestStalledHolder(t *testing.T) {
	for _, k := range testdb.Kinds {
		t.Run(string(k), func(t *testing.T) {
			t.Parallel()
			db, cfg := childSetup(t, k) // SQLite lease: 500ms
			hcfg := cfg
			hcfg.PauseAt, hcfg.PauseBatch = pauseEnrich, 2
			holder := startChild(t, "holder", hcfg)
			first := writerOf(holder)
			holder.waitLine("paused enrich 2")
			if k == testdb.SQLite {
				stopOutsideWrite(t, holder, cfg.DSN)
			} else if err := holder.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			total := batchesOf(nItems, batchSize)

			if k == testdb.PostgreSQL {
				other := startChild(t, "other runner", cfg) // no LockWait
				other.finish(exitLocked)
				if err := holder.cmd.Process.Signal(syscall.SIGCONT); err != nil {
					t.Fatal(err)
				}
				holder.resume()
				if rep := holder.finish(exitOK); rep.BatchesRun != total {
					t.Fatalf("holder ran %d batches, want %d", rep.BatchesRun, total)
				}
				checkCommitted(t, db, nItems, batchSize, total, true)
				checkEnrichedOnce(t, enrichments(t, cfg.Log, batchSize), nItems, batchSize, 0)
				t.Logf("FINDING %s, holder stopped (SIGSTOP): it kept the lock, another runner got ErrRunLocked; holder finished after SIGCONT, every item once", k)
				return
			}

			ocfg := cfg
			ocfg.LockWait = true
			other := startChild(t, "other runner", ocfg)
			second := writerOf(other)
			rep := other.finish(exitOK)
			if rep.BatchesSkipped != 1 || rep.BatchesRun != total-1 {
				t.Fatalf("other runner: skipped %d, ran %d; want 1, %d", rep.BatchesSkipped, rep.BatchesRun, total-1)
			}
			if err := holder.cmd.Process.Signal(syscall.SIGCONT); err != nil {
				t.Fatal(err)
			}
			holder.resume()
			holder.finish(exitRunErr)
			holder.waitStderr("run lock lost")
			writers := checkCommitted(t, db, nItems, batchSize, total, true)
			for b := 1; b <= total; b++ {
				want := second
				if b == 1 {
					want = first
				}
				if writers[b] != want {
					t.Errorf("batch %d written by %s, want %s", b, writers[b], want)
				}
			}
			twice := checkEnrichedOnce(t, enrichments(t, cfg.Log, batchSize), nItems, batchSize, 2)
			t.Logf("FINDING %s, holder stopped (SIGSTOP) past its lease: another runner took over and finished; the woken holder's batch-2 commit was refused with ErrLockLost; enriched twice: %v", k, twice)
		})
	}
}
