package crashtest

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/batchenrich/batchenrich/internal/testdb"
)

// walFrames reads a SQLite WAL file and counts the frames of its current
// generation (whose salts match the header's): those up to the last commit
// frame, and those after it, which belong to a transaction that never
// committed.
func walFrames(t *testing.T, path string) (committed, uncommitted int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const hdr, fhdr = 32, 24
	if len(b) < hdr {
		return 0, 0
	}
	if magic := binary.BigEndian.Uint32(b); magic&^1 != 0x377f0682 {
		t.Fatalf("%s: not a WAL file (magic %#x)", path, magic)
	}
	pageSize := int(binary.BigEndian.Uint32(b[8:]))
	if pageSize == 1 {
		pageSize = 65536
	}
	salt1, salt2 := binary.BigEndian.Uint32(b[16:]), binary.BigEndian.Uint32(b[20:])
	n, lastCommit := 0, 0
	for off := hdr; off+fhdr+pageSize <= len(b); off += fhdr + pageSize {
		f := b[off:]
		if binary.BigEndian.Uint32(f[8:]) != salt1 || binary.BigEndian.Uint32(f[12:]) != salt2 {
			break // a frame of an earlier generation: the log ends here
		}
		n++
		if binary.BigEndian.Uint32(f[4:]) != 0 { // database size after a commit
			lastCommit = n
		}
	}
	return lastCommit, n - lastCommit
}

// TestSQLiteWALRecovery kills the only process that has a SQLite database
// open while it is inside a batch's write transaction, with a page cache so
// small that SQLite has already spilled the uncommitted pages into the WAL.
// The next process to open the database must recover the WAL: the
// committed batch stays, the uncommitted one is gone, and the database
// passes integrity_check; the run then resumes to the end.
func TestSQLiteWALRecovery(t *testing.T) {
	t.Parallel()
	const n, size, pauseBatch = 60, 20, 2
	path := filepath.Join(t.TempDir(), "wal.db")
	dsn := testdb.SQLiteDSN(path)
	open := func() *sqlx.DB {
		db, err := sqlx.Open("sqlite", dsn)
		if err != nil {
			t.Fatal(err)
		}
		return db
	}
	db := open()
	createTables(t, db, n)
	if err := db.Close(); err != nil { // the parent holds nothing
		t.Fatal(err)
	}

	log := filepath.Join(t.TempDir(), "enrichments.log")
	cfg := childFor(testdb.SQLite, dsn+"&_pragma=cache_size(10)", log) // 10 pages: spill early
	cfg.BatchSize, cfg.Payload = size, 4000                            // ~80 KB of rows per batch
	cfg.PauseAt, cfg.PauseBatch = pauseWrite, pauseBatch
	p := startChild(t, "writer", cfg)
	p.waitLine("paused write 2")
	p.kill()

	committed, uncommitted := walFrames(t, path+"-wal")
	if committed == 0 || uncommitted == 0 {
		t.Fatalf("WAL after the kill: %d committed and %d uncommitted frames; want some of each", committed, uncommitted)
	}

	db = open()
	defer db.Close()
	var check string
	if err := db.Get(&check, `PRAGMA integrity_check`); err != nil || check != "ok" {
		t.Fatalf("integrity_check after the crash: %q, %v", check, err)
	}
	checkCommitted(t, db, n, size, pauseBatch-1, false)

	cfg = childFor(testdb.SQLite, dsn, log)
	cfg.BatchSize, cfg.Payload, cfg.LockWait = size, 4000, true
	rep := startChild(t, "resumer", cfg).finish(exitOK)
	if rep.BatchesSkipped != pauseBatch-1 || rep.BatchesRun != batchesOf(n, size)-pauseBatch+1 {
		t.Fatalf("resumed: skipped %d, ran %d", rep.BatchesSkipped, rep.BatchesRun)
	}
	if err := db.Get(&check, `PRAGMA integrity_check`); err != nil || check != "ok" {
		t.Fatalf("integrity_check after the resumed run: %q, %v", check, err)
	}
	checkCommitted(t, db, n, size, batchesOf(n, size), true)
	twice := checkEnrichedOnce(t, enrichments(t, log, size), n, size, pauseBatch)
	t.Logf("FINDING sqlite, SIGKILL in batch %d's write, no other process on the file: WAL held %d committed and %d uncommitted frames; after recovery integrity_check ok, batch 1 kept, batch 2 gone; resumed to %d rows; enriched twice: %d items of batch %d",
		pauseBatch, committed, uncommitted, n, len(twice), pauseBatch)
}
