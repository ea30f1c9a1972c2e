package sqlbatch_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq"  // PostgreSQL driver, registered as "postgres"
	_ "modernc.org/sqlite" // SQLite driver, registered as "sqlite"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/sqlbatch"
)

// The travelers job on PostgreSQL: read one execution's travelers by
// traveler_id, enrich each, and upsert the results with their batch
// number, failed items as is_valid = false rows; each batch commits with
// its checkpoint, and running again with the same execution id resumes.
func Example_travelers() {
	ctx := context.Background()
	db, err := sqlx.Open("postgres", os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	executionID := "exec-42"

	type Traveler struct {
		ExecutionID string `db:"execution_id"`
		TravelerID  int64  `db:"traveler_id"`
		Email       string `db:"email"`
	}
	type Profile struct {
		Score int `json:"score"`
	}

	src, err := sqlbatch.NewSource[Traveler](db, sqlbatch.SourceConfig{
		Table:   "traveler_batch_source",
		Columns: []string{"execution_id", "traveler_id", "email"},
		Key:     []string{"traveler_id"},
		Filter:  map[string]any{"execution_id": executionID},
	})
	if err != nil {
		log.Fatal(err)
	}
	sink, err := sqlbatch.NewSink(db, sqlbatch.SinkConfig[Traveler, Profile]{
		Table:       "traveler_batch_results",
		Key:         []string{"execution_id", "traveler_id"},
		Columns:     []string{"execution_id", "traveler_id", "payload", "is_valid", "validation_error"},
		BatchColumn: "batch_number",
		Row: func(r batchenrich.Result[Traveler, Profile]) ([]any, error) {
			if r.Err != nil {
				return []any{r.Item.ExecutionID, r.Item.TravelerID, nil, false, r.Err.Error()}, nil
			}
			return []any{r.Item.ExecutionID, r.Item.TravelerID, sqlbatch.JSON[Profile]{V: r.Value}, true, nil}, nil
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	store, err := sqlbatch.NewCheckpointStore(db, sqlbatch.CheckpointConfig{})
	if err != nil {
		log.Fatal(err)
	}
	if err := store.CreateTable(ctx); err != nil {
		log.Fatal(err)
	}
	enrich := batchenrich.EnricherFunc[Traveler, Profile](func(ctx context.Context, t Traveler) (Profile, error) {
		return Profile{Score: len(t.Email)}, nil // an HTTP call in real life
	})
	r, err := batchenrich.New(src, enrich, sink, batchenrich.Options{
		BatchSize:  100,
		MaxBatches: 50,
		Durable: &batchenrich.Durable{
			Store:  store,
			RunKey: executionID,
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	rep, err := r.Run(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(rep.BatchesRun, rep.BatchesSkipped, rep.Atomic)
}

// The same kind of job on an embedded SQLite file, with no setup.
func Example_sqlite() {
	dir, err := os.MkdirTemp("", "sqlbatch-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	// WAL and a busy timeout let the Source read while the Sink writes.
	dsn := "file:" + filepath.Join(dir, "app.db") + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_txlock=immediate"
	db, err := sqlx.Open("sqlite", dsn)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	db.MustExec(`CREATE TABLE words (id INTEGER PRIMARY KEY, word TEXT NOT NULL)`)
	db.MustExec(`CREATE TABLE lengths (id INTEGER PRIMARY KEY, length INTEGER, error TEXT, batch INTEGER NOT NULL)`)
	for i, w := range []string{"alpha", "beta", "", "delta", "epsilon"} {
		db.MustExec(`INSERT INTO words (id, word) VALUES (?, ?)`, i+1, w)
	}

	type Word struct {
		ID   int64  `db:"id"`
		Word string `db:"word"`
	}
	src, err := sqlbatch.NewSource[Word](db, sqlbatch.SourceConfig{Table: "words", Key: []string{"id"}})
	if err != nil {
		log.Fatal(err)
	}
	sink, err := sqlbatch.NewSink(db, sqlbatch.SinkConfig[Word, int]{
		Table: "lengths", Key: []string{"id"}, Columns: []string{"id", "length", "error"}, BatchColumn: "batch",
		Row: func(r batchenrich.Result[Word, int]) ([]any, error) {
			if r.Err != nil {
				return []any{r.Item.ID, nil, "empty word"}, nil
			}
			return []any{r.Item.ID, r.Value, nil}, nil
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	store, err := sqlbatch.NewCheckpointStore(db, sqlbatch.CheckpointConfig{})
	if err != nil {
		log.Fatal(err)
	}
	if err := store.CreateTable(ctx); err != nil {
		log.Fatal(err)
	}
	enrich := batchenrich.EnricherFunc[Word, int](func(ctx context.Context, w Word) (int, error) {
		if w.Word == "" {
			return 0, fmt.Errorf("empty")
		}
		return len(w.Word), nil
	})
	r, err := batchenrich.New(src, enrich, sink, batchenrich.Options{BatchSize: 2, Durable: &batchenrich.Durable{Store: store, RunKey: "words"}})
	if err != nil {
		log.Fatal(err)
	}
	rep, err := r.Run(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("batches %d, written %d, failed %d, atomic %v\n", rep.BatchesRun, rep.Written, rep.Failed, rep.Atomic)

	rows, err := db.Queryx(`SELECT id, length, error, batch FROM lengths ORDER BY id`)
	if err != nil {
		log.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, batch int
		var length *int
		var e *string
		if err := rows.Scan(&id, &length, &e, &batch); err != nil {
			log.Fatal(err)
		}
		if e != nil {
			fmt.Printf("%d: batch %d, failed: %s\n", id, batch, *e)
		} else {
			fmt.Printf("%d: batch %d, length %d\n", id, batch, *length)
		}
	}
	// Output:
	// batches 3, written 5, failed 1, atomic true
	// 1: batch 1, length 5
	// 2: batch 1, length 4
	// 3: batch 2, failed: empty word
	// 4: batch 2, length 5
	// 5: batch 3, length 7
}
