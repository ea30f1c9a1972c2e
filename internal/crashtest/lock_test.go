package crashtest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/batchenrich/batchenrich/internal/testdb"
	"github.com/batchenrich/batchenrich/sqlbatch"
)

// lockWaiting is what the Runner logs while it waits for a run lock.
const lockWaiting = "run locked by another runner, waiting"

// TestTwoRunnersTogether starts two children on one run key at the same
// instant, both waiting for the lock: one does the whole run, the other
// then finds it done; every item is enriched once.
func TestTwoRunnersTogether(t *testing.T) {
	for _, k := range testdb.Kinds {
		t.Run(string(k), func(t *testing.T) {
			t.Parallel()
			db, cfg := childSetup(t, k)
			cfg.LockWait, cfg.Delay = true, 5*time.Millisecond
			cfg.LeaseTTL = 0 // the default: the holder releases the lease when done
			a := startChild(t, "child A", cfg)
			b := startChild(t, "child B", cfg)
			ra, rb := a.finish(exitOK), b.finish(exitOK)
			if ra.AlreadyDone == rb.AlreadyDone {
				t.Fatalf("already done: A %v, B %v; want exactly one", ra.AlreadyDone, rb.AlreadyDone)
			}
			worker, idle, idleProc := ra, rb, b
			if ra.AlreadyDone {
				worker, idle, idleProc = rb, ra, a
			}
			total := batchesOf(nItems, batchSize)
			if worker.BatchesRun != total || worker.BatchesSkipped != 0 || idle.BatchesRun != 0 || idle.BatchesSkipped != total || idle.Read != 0 {
				t.Fatalf("worker ran %d (skipped %d), idle ran %d (skipped %d, read %d); want %d (0), 0 (%d, 0)",
					worker.BatchesRun, worker.BatchesSkipped, idle.BatchesRun, idle.BatchesSkipped, idle.Read, total, total)
			}
			writers := checkCommitted(t, db, nItems, batchSize, total, true)
			checkEnrichedOnce(t, enrichments(t, cfg.Log, batchSize), nItems, batchSize, 0)
			t.Logf("FINDING %s, two runners started together: one ran %d batches, the other reported AlreadyDone (it waited for the lock: %v); %d writer(s), every item enriched once",
				k, worker.BatchesRun, strings.Contains(idleProc.stderr.String(), lockWaiting), len(distinct(writers)))
		})
	}
}

func distinct(m map[int]string) map[string]bool {
	out := map[string]bool{}
	for _, v := range m {
		out[v] = true
	}
	return out
}

// TestSecondRunnerLocked holds the run lock in a child paused in batch
// 2. A second child without LockWait fails at once with ErrRunLocked,
// having done nothing; a third with LockWait waits, and after the first
// finishes finds the run done.
func TestSecondRunnerLocked(t *testing.T) {
	for _, k := range testdb.Kinds {
		t.Run(string(k), func(t *testing.T) {
			t.Parallel()
			db, cfg := childSetup(t, k)
			cfg.LeaseTTL = 0 // the default; nobody dies here
			hcfg := cfg
			hcfg.PauseAt, hcfg.PauseBatch = pauseEnrich, 2
			holder := startChild(t, "holder", hcfg)
			holder.waitLine("paused enrich 2")

			locked := startChild(t, "no-wait runner", cfg)
			rep := locked.finish(exitLocked)
			if rep.BatchesRun != 0 || rep.Read != 0 {
				t.Fatalf("locked-out runner: %+v", rep)
			}

			wcfg := cfg
			wcfg.LockWait = true
			waiter := startChild(t, "waiting runner", wcfg)
			waiter.waitStderr(lockWaiting)
			holder.resume()
			hrep := holder.finish(exitOK)
			wrep := waiter.finish(exitOK)
			total := batchesOf(nItems, batchSize)
			if hrep.BatchesRun != total || !wrep.AlreadyDone || wrep.BatchesRun != 0 {
				t.Fatalf("holder ran %d; waiter done %v, ran %d", hrep.BatchesRun, wrep.AlreadyDone, wrep.BatchesRun)
			}
			checkCommitted(t, db, nItems, batchSize, total, true)
			checkEnrichedOnce(t, enrichments(t, cfg.Log, batchSize), nItems, batchSize, 0)
			t.Logf("FINDING %s, run locked: the no-wait runner exited with ErrRunLocked, the waiting one found the run done; every item enriched once", k)
		})
	}
}

// TestLockFreedWhenHolderDies kills the lock holder; the lock becomes
// free by itself (PostgreSQL: the server ends the session; SQLite: the
// kernel frees the holder's OS lock beside the database, which proves the
// lease abandoned), and a runner without LockWait then takes over.
func TestLockFreedWhenHolderDies(t *testing.T) {
	for _, k := range testdb.Kinds {
		t.Run(string(k), func(t *testing.T) {
			t.Parallel()
			db, cfg := childSetup(t, k) // LeaseTTL 500ms
			hcfg := cfg
			hcfg.PauseAt, hcfg.PauseBatch = pauseEnrich, 2
			holder := startChild(t, "holder", hcfg)
			holder.waitLine("paused enrich 2")
			holder.kill()
			killed := time.Now()

			store, err := sqlbatch.NewCheckpointStore(db, sqlbatch.CheckpointConfig{})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			tries := 0
			for {
				unlock, ok, err := store.TryLock(ctx, runKey)
				if err != nil {
					t.Fatal(err)
				}
				tries++
				if ok {
					if err := unlock(); err != nil {
						t.Fatal(err)
					}
					break
				}
				if time.Since(killed) > waitLimit {
					t.Fatalf("run still locked %s after its holder died", waitLimit)
				}
				time.Sleep(10 * time.Millisecond)
			}
			freedAfter := time.Since(killed)

			next := startChild(t, "next runner", cfg) // LockWait false
			rep := next.finish(exitOK)
			total := batchesOf(nItems, batchSize)
			if rep.BatchesSkipped != 1 || rep.BatchesRun != total-1 {
				t.Fatalf("next runner: skipped %d, ran %d; want 1, %d", rep.BatchesSkipped, rep.BatchesRun, total-1)
			}
			checkCommitted(t, db, nItems, batchSize, total, true)
			twice := checkEnrichedOnce(t, enrichments(t, cfg.Log, batchSize), nItems, batchSize, 2)
			t.Logf("FINDING %s, lock holder killed: lock free after %s (%d tries), next runner (no wait) resumed after batch 1; enriched twice: %v",
				k, freedAfter.Round(time.Millisecond), tries, twice)
		})
	}
}
