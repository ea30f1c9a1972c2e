package crashtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/internal/testdb"
	"github.com/batchenrich/batchenrich/sqlbatch"
)

// item is a row of crash_source.
type item struct {
	ID   int64  `db:"id"`
	Name string `db:"name"`
}

func (it item) Key() string { return strconv.FormatInt(it.ID, 10) }

// profile is an item's enrichment.
type profile struct {
	ID    int64 `json:"id"`
	Score int64 `json:"score"`
}

// scoreOf is what the enrichment of item id yields.
func scoreOf(id int64) int64 { return id * 3 }

// batchOf is the batch number item id must get: ids run from 1 without
// gaps, so item id is in batch (id-1)/size+1.
func batchOf(id int64, size int) int { return int((id-1)/int64(size)) + 1 }

const (
	sourceTable  = "crash_source"
	resultsTable = "crash_results"
)

// createTables creates and seeds crash_source with items 1..n, and creates
// crash_results and the checkpoint table.
func createTables(t testing.TB, db *sqlx.DB, n int) {
	t.Helper()
	ctx := context.Background()
	for _, q := range []string{
		`CREATE TABLE ` + sourceTable + ` (id BIGINT PRIMARY KEY, name TEXT NOT NULL)`,
		// Keyed by (id, writer), not id alone: see the package doc.
		`CREATE TABLE ` + resultsTable + ` (
			id BIGINT NOT NULL,
			writer TEXT NOT NULL,
			name TEXT NOT NULL,
			score BIGINT NOT NULL,
			payload TEXT NOT NULL,
			batch_number INTEGER NOT NULL,
			PRIMARY KEY (id, writer))`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	ins := db.Rebind(`INSERT INTO ` + sourceTable + ` (id, name) VALUES (?, ?)`)
	for i := n; i >= 1; i-- { // in reverse: the Source must sort
		if _, err := tx.ExecContext(ctx, ins, i, fmt.Sprintf("item %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	store, err := sqlbatch.NewCheckpointStore(db, sqlbatch.CheckpointConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.CreateTable(ctx); err != nil {
		t.Fatal(err)
	}
}

// job is the durable job the tests run: a Source over crash_source, a
// Sink writing crash_results with the batch number, and a CheckpointStore
// on the same database, so that batches commit with their checkpoint.
type job struct {
	src   *sqlbatch.Source[item]
	sink  *sqlbatch.Sink[item, profile]
	store *sqlbatch.CheckpointStore
}

// jobConfig configures a job.
type jobConfig struct {
	Writer   string                                  // tags the rows this process writes
	Payload  int                                     // bytes of payload text per row
	LeaseTTL time.Duration                           // sqlbatch.CheckpointConfig.LeaseTTL
	OnRow    func(batchenrich.Result[item, profile]) // called as each row is built, if set
}

// newJob builds the job on db.
func newJob(db *sqlx.DB, cfg jobConfig) (*job, error) {
	src, err := sqlbatch.NewSource[item](db, sqlbatch.SourceConfig{
		Table: sourceTable,
		Key:   []string{"id"},
	})
	if err != nil {
		return nil, err
	}
	pad := strings.Repeat("x", cfg.Payload)
	sink, err := sqlbatch.NewSink(db, sqlbatch.SinkConfig[item, profile]{
		Table:       resultsTable,
		Key:         []string{"id", "writer"},
		Columns:     []string{"id", "writer", "name", "score", "payload"},
		BatchColumn: "batch_number",
		Row: func(r batchenrich.Result[item, profile]) ([]any, error) {
			if cfg.OnRow != nil {
				cfg.OnRow(r)
			}
			score := r.Value.Score
			if r.Err != nil {
				score = -1
			}
			return []any{r.Item.ID, cfg.Writer, r.Item.Name, score, pad}, nil
		},
	})
	if err != nil {
		return nil, err
	}
	store, err := sqlbatch.NewCheckpointStore(db, sqlbatch.CheckpointConfig{LeaseTTL: cfg.LeaseTTL})
	if err != nil {
		return nil, err
	}
	return &job{src: src, sink: sink, store: store}, nil
}

// runKey is the run key of every test run.
const runKey = "crash-run"

// resultRow is a row of crash_results.
type resultRow struct {
	ID     int64  `db:"id"`
	Writer string `db:"writer"`
	Score  int64  `db:"score"`
	Batch  int    `db:"batch_number"`
}

// state is what the database holds after a run or a crash.
type state struct {
	rows     []resultRow
	distinct int
	cp       batchenrich.Checkpoint
}

func readState(t testing.TB, db *sqlx.DB) state {
	t.Helper()
	var s state
	if err := db.Select(&s.rows, `SELECT id, writer, score, batch_number FROM `+resultsTable+` ORDER BY id, writer`); err != nil {
		t.Fatal(err)
	}
	if err := db.Get(&s.distinct, `SELECT count(DISTINCT id) FROM `+resultsTable); err != nil {
		t.Fatal(err)
	}
	store, err := sqlbatch.NewCheckpointStore(db, sqlbatch.CheckpointConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if s.cp, err = store.Load(context.Background(), runKey); err != nil {
		t.Fatal(err)
	}
	return s
}

// checkCommitted checks that the database holds exactly batches
// 1..batches of items 1..n: each item once, in its batch, with its score,
// each batch written by one writer; and a checkpoint at that batch, done
// or not. It returns the writer of each batch.
func checkCommitted(t testing.TB, db *sqlx.DB, n, size, batches int, done bool) map[int]string {
	t.Helper()
	s := readState(t, db)
	want := min(n, batches*size)
	if len(s.rows) != want || s.distinct != want {
		t.Fatalf("%d rows, %d distinct ids; want %d of each (batches 1..%d)", len(s.rows), s.distinct, want, batches)
	}
	writers := map[int]string{}
	for i, r := range s.rows {
		id := int64(i + 1)
		b := batchOf(id, size)
		if r.ID != id || r.Batch != b || r.Score != scoreOf(id) {
			t.Fatalf("row %d = %+v; want item %d in batch %d with score %d", i, r, id, b, scoreOf(id))
		}
		if w, ok := writers[b]; ok && w != r.Writer {
			t.Fatalf("batch %d written by %s and %s", b, w, r.Writer)
		}
		writers[b] = r.Writer
	}
	if s.cp.Batch != batches || s.cp.Done != done {
		t.Fatalf("checkpoint = %+v; want batch %d, done %v", s.cp, batches, done)
	}
	if batches > 0 && s.cp.Cursor != batchenrich.Cursor(fmt.Sprintf("[%d]", want)) {
		t.Fatalf("checkpoint cursor = %q; want [%d]", s.cp.Cursor, want)
	}
	checkStatus(t, db, want, batches, done)
	return writers
}

// checkStatus checks that the run's status, as the store reports it to
// operators, counts exactly the rows and batches committed (whatever the
// kills and resumes before), and says done when the run is.
func checkStatus(t testing.TB, db *sqlx.DB, rows, batches int, done bool) {
	t.Helper()
	store, err := sqlbatch.NewCheckpointStore(db, sqlbatch.CheckpointConfig{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Status(context.Background(), runKey)
	switch {
	case errors.Is(err, batchenrich.ErrUnknownRun) && batches == 0:
		return // killed before anything was recorded
	case err != nil:
		t.Fatalf("status: %v", err)
	}
	c := st.Counts
	if c.Written != rows || c.Read != rows || c.Enriched+c.Failed != rows || c.Batches != batches || (st.State == batchenrich.StateDone) != done {
		t.Fatalf("status %s counts %+v; want %d rows written and read in %d batches (the Sink's), done %v", st.State, c, rows, batches, done)
	}
}

// enrichments counts, per item, the enrichments logged at path.
func enrichments(t testing.TB, path string, size int) map[int64]int {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return map[int64]int{}
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	counts := map[int64]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var b int
		var id int64
		if _, err := fmt.Sscanf(sc.Text(), "%d %d", &b, &id); err != nil {
			t.Fatalf("enrichment log: line %q: %v", sc.Text(), err)
		}
		if b != batchOf(id, size) {
			t.Fatalf("enrichment log: item %d logged in batch %d", id, b)
		}
		counts[id]++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return counts
}

// checkEnrichedOnce checks that every item 1..n was enriched, and that
// the items enriched more than once (at most twice) all belong to batch
// again; again 0 means none may be. It returns the items enriched twice.
func checkEnrichedOnce(t testing.TB, counts map[int64]int, n, size, again int) []int64 {
	t.Helper()
	var twice []int64
	for id := int64(1); id <= int64(n); id++ {
		c := counts[id]
		switch {
		case c == 0:
			t.Errorf("item %d never enriched", id)
		case c > 2:
			t.Errorf("item %d enriched %d times", id, c)
		case c == 2:
			twice = append(twice, id)
		}
	}
	if len(counts) != n {
		t.Errorf("%d items enriched; want %d", len(counts), n)
	}
	slices.Sort(twice)
	for _, id := range twice {
		if b := batchOf(id, size); b != again {
			t.Errorf("item %d (batch %d) enriched twice; only batch %d may be (0: none)", id, b, again)
		}
	}
	return twice
}

// dbFor returns a fresh database of kind k for the parent, and the DSN a
// child reaches it with.
func dbFor(t *testing.T, k testdb.Kind) (*sqlx.DB, string) {
	t.Helper()
	if k == testdb.PostgreSQL {
		return testdb.PostgresWithURL(t)
	}
	return testdb.SQLiteWithDSN(t)
}

// driverOf is the database/sql driver name of kind k.
func driverOf(k testdb.Kind) string {
	if k == testdb.PostgreSQL {
		return "postgres"
	}
	return "sqlite"
}
