package riverenrich_test

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq" // PostgreSQL driver, registered as "postgres"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/riverenrich"
	"github.com/batchenrich/batchenrich/sqlbatch"
)

// A run split into 3 key partitions, enqueued as River jobs and worked on
// by this process (start the same Client in as many processes as you
// like: they share the jobs, and take over those of a dead one). It needs
// PostgreSQL at $DATABASE_URL, so it has no Output to check:
// TestExample runs it against the test database.
func Example() {
	ctx := context.Background()
	db, err := sql.Open("postgres", os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	if err := riverenrich.Migrate(ctx, db, ""); err != nil { // River's tables; safe from several processes
		log.Fatal(err)
	}
	dbx := sqlx.NewDb(db, "postgres") // what sqlbatch takes
	for _, q := range []string{
		`CREATE TABLE IF NOT EXISTS numbers (id BIGINT PRIMARY KEY)`,
		`CREATE TABLE IF NOT EXISTS squares (id BIGINT PRIMARY KEY, square BIGINT NOT NULL, part INTEGER NOT NULL, batch INTEGER NOT NULL)`,
		`INSERT INTO numbers SELECT generate_series(1, 1000) ON CONFLICT DO NOTHING`,
	} {
		dbx.MustExecContext(ctx, q)
	}
	store, err := sqlbatch.NewCheckpointStore(dbx, sqlbatch.CheckpointConfig{})
	if err != nil {
		log.Fatal(err)
	}
	if err := store.CreateTable(ctx); err != nil {
		log.Fatal(err)
	}

	type Number struct {
		ID int64 `db:"id"`
	}
	c, err := riverenrich.New(riverenrich.Config[Number, int64]{
		DB:    db,
		Job:   "squares", // what defines a run's results; one River queue per job
		Store: store,     // checkpoints and run locks
		Source: func(ctx context.Context, job riverenrich.Job) (batchenrich.Source[Number], error) {
			return sqlbatch.NewSource[Number](dbx, sqlbatch.SourceConfig{
				Table: "numbers", Key: []string{"id"},
				Partition: job.Partition, // this partition's rows only
			})
		},
		Enricher: batchenrich.EnricherFunc[Number, int64](func(ctx context.Context, n Number) (int64, error) {
			return n.ID * n.ID, nil // an HTTP call in real life; shared by every partition of the process
		}),
		Sink: func(ctx context.Context, job riverenrich.Job) (batchenrich.Sink[Number, int64], error) {
			return sqlbatch.NewSink(dbx, sqlbatch.SinkConfig[Number, int64]{
				Table: "squares", Key: []string{"id"}, Columns: []string{"id", "square", "part"}, BatchColumn: "batch",
				Row: func(r batchenrich.Result[Number, int64]) ([]any, error) {
					return []any{r.Item.ID, r.Value, job.Partition.Index}, nil
				},
			})
		},
		Options: func(job riverenrich.Job) (batchenrich.Options, error) {
			return batchenrich.Options{BatchSize: 100, Concurrency: 8}, nil // per partition
		},
		Concurrency:       16, // in this process, over all its partitions
		FetchPollInterval: 100 * time.Millisecond,
	})
	if err != nil {
		log.Fatal(err)
	}

	// A worker.
	if err := c.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.Stop(stopCtx); err != nil { // lets each partition commit its batch
			log.Print(err)
		}
	}()

	// An enqueuer (any process; EnqueueTx inside a transaction of yours).
	e, err := c.Enqueue(ctx, "squares-1", 3, nil) // run key, partitions, params
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Wait(ctx, e, riverenrich.WaitOptions{}); err != nil { // every partition done, or one failed
		log.Fatal(err)
	}
	var n struct {
		Rows  int `db:"rows"`
		Parts int `db:"parts"`
	}
	if err := dbx.GetContext(ctx, &n, `SELECT count(*) AS rows, count(DISTINCT part) AS parts FROM squares`); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("run %s: %d squares stored by %d partitions\n", e.Run, n.Rows, n.Parts)
}
