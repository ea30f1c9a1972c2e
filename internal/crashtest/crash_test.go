package crashtest

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/batchenrich/batchenrich/internal/testdb"
)

// The job most tests run: 55 items in batches of 10, so 6 batches, the
// last one short (it commits with the checkpoint marked done).
const (
	nItems      = 55
	batchSize   = 10
	concurrency = 4
)

// batchesOf is the number of batches n items make.
func batchesOf(n, size int) int { return (n + size - 1) / size }

// childFor is the configuration of a child on the database at dsn.
// childSetup gives a test a fresh database of kind k with the job's tables
// seeded, and the configuration of a child working on it, logging its
// enrichments to a file of the test's own.
func childSetup(t *testing.T, k testdb.Kind) (*sqlx.DB, childConfig) {
	t.Helper()
	db, dsn := dbFor(t, k)
	createTables(t, db, nItems)
	return db, childFor(k, dsn, filepath.Join(t.TempDir(), "enrichments.log"))
}

func childFor(k testdb.Kind, dsn, log string) childConfig {
	return childConfig{
		Kind: k, DSN: dsn, Log: log,
		BatchSize: batchSize, Concurrency: concurrency, Payload: 64,
		// A killed runner's SQLite lease must expire before the next
		// one can run; keep that short. Unused on PostgreSQL.
		LeaseTTL: 500 * time.Millisecond,
	}
}

// writerOf returns the writer token a child announced.
func writerOf(p *proc) string {
	p.t.Helper()
	return strings.TrimPrefix(p.waitLine("start "), "start ")
}

// TestCrashAndResume kills a child with SIGKILL at one point of a run,
// checks what the database holds, runs the job again to the end in another
// child, and checks the rows, their batch numbers, the checkpoint and the
// enrichments.
func TestCrashAndResume(t *testing.T) {
	cases := []struct {
		name  string
		point string
		batch int
		n     int
	}{
		{"enrich/first batch", pauseEnrich, 1, nItems},
		{"enrich", pauseEnrich, 3, nItems},
		{"write", pauseWrite, 3, nItems},
		{"write/last batch", pauseWrite, 6, nItems}, // the commit that marks the run done
		{"between", pauseBetween, 3, nItems},
		{"between/after last full batch", pauseBetween, 6, 60}, // done is saved after it, apart
	}
	for _, k := range testdb.Kinds {
		t.Run(string(k), func(t *testing.T) {
			t.Parallel()
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					crashAndResume(t, k, tc.point, tc.batch, tc.n)
				})
			}
		})
	}
}

func crashAndResume(t *testing.T, k testdb.Kind, point string, batch, n int) {
	db, dsn := dbFor(t, k)
	createTables(t, db, n)
	log := filepath.Join(t.TempDir(), "enrichments.log")
	total := batchesOf(n, batchSize)

	cfg := childFor(k, dsn, log)
	cfg.PauseAt, cfg.PauseBatch = point, batch
	crashed := startChild(t, "crashed child", cfg)
	first := writerOf(crashed)
	crashed.waitLine(fmt.Sprintf("paused %s %d", point, batch))
	crashed.kill()

	// What the crash left: the batches before the one in flight, or up
	// to the one just committed; never part of a batch.
	committed, again := batch-1, batch
	if point == pauseBetween {
		committed, again = batch, 0
	}
	checkCommitted(t, db, n, batchSize, committed, false)

	cfg = childFor(k, dsn, log)
	cfg.LockWait = true // the dead child's SQLite lease may not have expired yet
	resumed := startChild(t, "resuming child", cfg)
	second := writerOf(resumed)
	rep := resumed.finish(exitOK)
	// Atomic says batches were committed with their checkpoint: only
	// when the resumed run had batches left to commit.
	if rep.AlreadyDone || rep.BatchesSkipped != committed || rep.BatchesRun != total-committed ||
		rep.Atomic != (committed < total) || rep.Written != n-committed*batchSize {
		t.Fatalf("resumed run: done %v, skipped %d, ran %d, wrote %d, atomic %v; want false, %d, %d, %d, %v",
			rep.AlreadyDone, rep.BatchesSkipped, rep.BatchesRun, rep.Written, rep.Atomic, committed, total-committed, n-committed*batchSize, committed < total)
	}
	writers := checkCommitted(t, db, n, batchSize, total, true)
	for b := 1; b <= total; b++ {
		want := second
		if b <= committed {
			want = first
		}
		if writers[b] != want {
			t.Errorf("batch %d written by %s, want %s", b, writers[b], want)
		}
	}
	twice := checkEnrichedOnce(t, enrichments(t, log, batchSize), n, batchSize, again)
	if point == pauseWrite && len(twice) != min(batchSize, n-(batch-1)*batchSize) {
		t.Errorf("killed in batch %d's write: %d items enriched twice, want the whole batch", batch, len(twice))
	}
	if point == pauseEnrich && len(twice) == 0 {
		t.Errorf("killed in batch %d's enrichment: no item enriched twice, want at least the paused one", batch)
	}
	s := readState(t, db)
	t.Logf("FINDING %s, SIGKILL %s batch %d: after the kill %d batches committed; final %d rows, %d distinct ids, checkpoint %+v; enriched twice: %v (batch %d)",
		k, point, batch, committed, len(s.rows), s.distinct, s.cp, twice, again)
}

// TestRandomKills kills a child at random instants, the commits included,
// several times over, then lets a run finish. After every kill the
// database holds whole batches 1..c and a checkpoint at c; at the end every
// item is there once, and only batches in flight at a kill were enriched
// again, each at most once per kill.
func TestRandomKills(t *testing.T) {
	for _, k := range testdb.Kinds {
		t.Run(string(k), func(t *testing.T) {
			t.Parallel()
			randomKills(t, k, false)
		})
	}
}
