package crashtest

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/batchenrich/batchenrich/internal/testdb"
)

// TestCrashOverlapped kills an overlapped child (Options.Overlap) with two
// batches in flight — one paused in its write transaction before the
// commit, or just after it, the next paused in its enrichment — then
// resumes the run in another child: the database holds whole batches only,
// with their checkpoint, and at most the two batches in flight are
// enriched again. Which two depends on the schedule where the pause leaves
// room for the next batch to start (see enrichedMay): the test asserts the
// documented bound, not one schedule.
func TestCrashOverlapped(t *testing.T) {
	cases := []struct {
		name          string
		point         string
		batch         int   // the batch paused at point
		enrichToo     int   // the batch paused in its enrichment too, or 0
		committed     int   // batches committed at the kill
		enrichedTwice []int // batches certainly enriched again
		enrichedMay   []int // batches that may be enriched again too
	}{
		// Batch 3 written (not committed), batch 4 enriched: both again.
		// Batch 5 waits for batch 3's write, so it never started.
		{"write and enrich", pauseWrite, 3, 4, 2, []int{3, 4}, nil},
		// Batch 3 committed, batch 4 enriched: batch 4 again. Batch 5
		// waits for batch 3's write to return, paused after its commit.
		{"committed and enrich", pauseBetween, 3, 4, 3, []int{4}, nil},
		// The last batch, written alone: it again.
		{"write/last batch", pauseWrite, 6, 0, 5, []int{6}, nil},
		// The first batch, enriched with nothing written yet: it again.
		// Its paused item leaves the other workers free to take the rest
		// of batch 1, and once every worker holds its slot batch 2 starts
		// (with Overlap that is allowed), so batch 2 may have been
		// enriched too before the kill, or not; batch 3 waits for batch
		// 1's write, so it never started.
		{"enrich/first batch", pauseEnrich, 1, 0, 0, []int{1}, []int{2}},
	}
	for _, k := range testdb.Kinds {
		t.Run(string(k), func(t *testing.T) {
			t.Parallel()
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					db, dsn := dbFor(t, k)
					createTables(t, db, nItems)
					log := filepath.Join(t.TempDir(), "enrichments.log")
					total := batchesOf(nItems, batchSize)

					cfg := childFor(k, dsn, log)
					cfg.Overlap = true
					cfg.PauseAt, cfg.PauseBatch, cfg.PauseEnrichToo = tc.point, tc.batch, tc.enrichToo
					crashed := startChild(t, "crashed child", cfg)
					first := writerOf(crashed)
					crashed.waitLine(fmt.Sprintf("paused %s %d", tc.point, tc.batch))
					if tc.enrichToo > 0 {
						// Two batches in flight at once: the proof that
						// the child overlaps.
						crashed.waitLine(fmt.Sprintf("paused %s %d", pauseEnrich, tc.enrichToo))
					}
					crashed.kill()
					checkCommitted(t, db, nItems, batchSize, tc.committed, false)

					cfg = childFor(k, dsn, log)
					cfg.Overlap, cfg.LockWait = true, true
					resumed := startChild(t, "resuming child", cfg)
					second := writerOf(resumed)
					rep := resumed.finish(exitOK)
					if rep.BatchesSkipped != tc.committed || rep.BatchesRun != total-tc.committed || !rep.Atomic {
						t.Fatalf("resumed run: skipped %d, ran %d, atomic %v; want %d, %d, true",
							rep.BatchesSkipped, rep.BatchesRun, rep.Atomic, tc.committed, total-tc.committed)
					}
					writers := checkCommitted(t, db, nItems, batchSize, total, true)
					for b := 1; b <= total; b++ {
						if want := map[bool]string{true: first, false: second}[b <= tc.committed]; writers[b] != want {
							t.Errorf("batch %d written by %s, want %s", b, writers[b], want)
						}
					}
					again := enrichedAgain(t, enrichments(t, log, batchSize), nItems, batchSize, 1)
					if !enrichedAgainOK(again, tc.enrichedTwice, tc.enrichedMay) {
						t.Errorf("batches enriched again: %v, want %v and possibly some of %v", again, tc.enrichedTwice, tc.enrichedMay)
					}
					t.Logf("FINDING %s, overlapped, SIGKILL %s batch %d (enrichment of %d paused): %d committed; batches enriched again %v",
						k, tc.point, tc.batch, tc.enrichToo, tc.committed, again)
				})
			}
		})
	}
}

// enrichedAgainOK reports whether again, the batches enriched again, holds
// every batch of must and otherwise only batches of may.
func enrichedAgainOK(again, must, may []int) bool {
	for _, b := range must {
		if !slices.Contains(again, b) {
			return false
		}
	}
	for _, b := range again {
		if !slices.Contains(must, b) && !slices.Contains(may, b) {
			return false
		}
	}
	return true
}

// enrichedAgain checks that every item 1..n was enriched at least once and
// at most 1+kills times, and returns the batches with an item enriched
// more than once, in order.
func enrichedAgain(t testing.TB, counts map[int64]int, n, size, kills int) []int {
	t.Helper()
	var again []int
	for id := int64(1); id <= int64(n); id++ {
		c := counts[id]
		switch {
		case c == 0:
			t.Errorf("item %d never enriched", id)
		case c > 1+kills:
			t.Errorf("item %d enriched %d times after %d kills", id, c, kills)
		case c > 1:
			if b := batchOf(id, size); !slices.Contains(again, b) {
				again = append(again, b)
			}
		}
	}
	slices.Sort(again)
	return again
}

// TestRandomKillsOverlapped kills overlapped children at random instants,
// several times over, then lets a run finish. After every kill the
// database holds whole batches 1..c and a checkpoint at c; at the end every
// item is there once, and only the two batches after c at a kill (one
// being written, one being enriched) were enriched again.
func TestRandomKillsOverlapped(t *testing.T) {
	for _, k := range testdb.Kinds {
		t.Run(string(k), func(t *testing.T) {
			t.Parallel()
			randomKills(t, k, true)
		})
	}
}
