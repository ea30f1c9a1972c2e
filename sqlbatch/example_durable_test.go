package sqlbatch_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/jmoiron/sqlx"
	_ "modernc.org/sqlite" // SQLite driver, registered as "sqlite"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/sqlbatch"
)

// A durable run on an SQLite file: each batch's rows commit in one
// transaction with the run's checkpoint, so a run that stopped (here an
// Enricher whose API went away, a Fatal error, at item 5) resumes with
// the same RunKey after its last committed batch, writing nothing twice.
// PostgreSQL is the same code with another driver.
func ExampleNewCheckpointStore() {
	dir, err := os.MkdirTemp("", "sqlbatch-durable")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	db, err := sqlx.Open("sqlite", "file:"+filepath.Join(dir, "app.db")+
		"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_txlock=immediate")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	db.MustExec(`CREATE TABLE numbers (id INTEGER PRIMARY KEY)`)
	db.MustExec(`CREATE TABLE squares (id INTEGER PRIMARY KEY, square INTEGER NOT NULL, batch INTEGER NOT NULL)`)
	for id := 1; id <= 7; id++ {
		db.MustExec(`INSERT INTO numbers (id) VALUES (?)`, id)
	}

	type Number struct {
		ID int64 `db:"id"`
	}
	src, err := sqlbatch.NewSource[Number](db, sqlbatch.SourceConfig{Table: "numbers", Key: []string{"id"}})
	if err != nil {
		log.Fatal(err)
	}
	sink, err := sqlbatch.NewSink(db, sqlbatch.SinkConfig[Number, int64]{
		Table: "squares", Key: []string{"id"}, Columns: []string{"id", "square"}, BatchColumn: "batch",
		Row: func(r batchenrich.Result[Number, int64]) ([]any, error) { return []any{r.Item.ID, r.Value}, nil },
	})
	if err != nil {
		log.Fatal(err)
	}
	store, err := sqlbatch.NewCheckpointStore(db, sqlbatch.CheckpointConfig{})
	if err != nil {
		log.Fatal(err)
	}
	if err := store.CreateTable(ctx); err != nil { // idempotent
		log.Fatal(err)
	}

	apiDown := true
	square := batchenrich.EnricherFunc[Number, int64](func(ctx context.Context, n Number) (int64, error) {
		if n.ID == 5 && apiDown {
			return 0, batchenrich.Fatal(errors.New("API credentials revoked"))
		}
		return n.ID * n.ID, nil
	})
	opts := batchenrich.Options{BatchSize: 2, Durable: &batchenrich.Durable{Store: store, RunKey: "squares-1"}}
	r, err := batchenrich.New(src, square, sink, opts)
	if err != nil {
		log.Fatal(err)
	}
	rep, err := r.Run(ctx)
	fmt.Println("first run: batches", rep.BatchesRun, "then:", err)

	apiDown = false
	rep, err = r.Run(ctx) // or a new process with the same RunKey
	fmt.Println("second run: skipped", rep.BatchesSkipped, "ran", rep.BatchesRun, err)

	var rows []struct {
		ID     int64 `db:"id"`
		Square int64 `db:"square"`
		Batch  int   `db:"batch"`
	}
	if err := db.Select(&rows, `SELECT id, square, batch FROM squares ORDER BY id`); err != nil {
		log.Fatal(err)
	}
	for _, row := range rows {
		fmt.Printf("%d² = %d (batch %d)\n", row.ID, row.Square, row.Batch)
	}
	// Output:
	// first run: batches 2 then: batchenrich: batch 3 item 0: API credentials revoked
	// second run: skipped 2 ran 2 <nil>
	// 1² = 1 (batch 1)
	// 2² = 4 (batch 1)
	// 3² = 9 (batch 2)
	// 4² = 16 (batch 2)
	// 5² = 25 (batch 3)
	// 6² = 36 (batch 3)
	// 7² = 49 (batch 4)
}
