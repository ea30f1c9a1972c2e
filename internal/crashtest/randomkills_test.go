package crashtest

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/batchenrich/batchenrich/internal/testdb"
)

// randomKills is TestRandomKills and TestRandomKillsOverlapped on database
// k: it kills a child (overlapped or not) at random instants, several times
// over, then lets a run finish. After every kill the database holds whole
// batches 1..c and a checkpoint at c; at the end every item is there once,
// and only the batches in flight at a kill (c+1; with overlap c+1 and c+2)
// were enriched again, each at most once per kill.
func randomKills(t *testing.T, k testdb.Kind, overlap bool) {
	const n, size, kills = 60, 5, 4
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 0))
	db, dsn := dbFor(t, k)
	createTables(t, db, n)
	log := filepath.Join(t.TempDir(), "enrichments.log")
	cfg := childFor(k, dsn, log)
	cfg.BatchSize, cfg.Concurrency, cfg.Delay, cfg.LockWait, cfg.Overlap = size, 2, 3*time.Millisecond, true, overlap
	var app string
	cfg.DSN, app = tagSessions(t, k, cfg.DSN)
	inFlight := map[int]int{} // batch → kills while it was in flight
	var killedAt []string
	for i := range kills {
		p := startChild(t, fmt.Sprintf("child %d", i+1), cfg)
		p.waitLine("start ")
		delay := time.Duration(rng.IntN(250)) * time.Millisecond
		time.Sleep(delay)
		_ = p.cmd.Process.Kill()
		code := p.wait()
		waitSessionsGone(t, db, app) // its last COMMIT may still be landing
		s := readState(t, db)
		checkCommitted(t, db, n, size, s.cp.Batch, s.cp.Done)
		if code != -1 { // it finished before the kill
			killedAt = append(killedAt, fmt.Sprintf("finished (exit %d)", code))
			break
		}
		inFlight[s.cp.Batch+1]++
		if overlap {
			inFlight[s.cp.Batch+2]++
		}
		killedAt = append(killedAt, fmt.Sprintf("+%s: %d committed", delay, s.cp.Batch))
		if s.cp.Done {
			break
		}
	}
	p := startChild(t, "last child", cfg)
	p.finish(exitOK)
	checkCommitted(t, db, n, size, batchesOf(n, size), true)
	counts := enrichments(t, log, size)
	again := map[int]bool{}
	for id := int64(1); id <= n; id++ {
		b := batchOf(id, size)
		if c := counts[id]; c < 1 || c > 1+inFlight[b] {
			if overlap {
				t.Errorf("item %d (batch %d) enriched %d times; %d kills with its batch in flight", id, b, c, inFlight[b])
			} else {
				t.Errorf("item %d (batch %d) enriched %d times; %d kills in its batch", id, b, c, inFlight[b])
			}
		} else if c > 1 {
			again[b] = true
		}
	}
	mode := ""
	if overlap {
		mode = "overlapped, "
	}
	t.Logf("FINDING %s, %srandom SIGKILLs (seed %d): %s; batches enriched again: %v", k, mode, seed, strings.Join(killedAt, ", "), again)
}
