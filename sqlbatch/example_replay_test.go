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

// A replay of a run's failures: the run stores each failed item as a row
// with its failure class; after the outage, NewFailedSource reads back the
// transient ones and a batchenrich.Replay writes each new result over the
// failed row, keeping its batch number. The permanent failure stays.
func ExampleNewFailedSource() {
	dir, err := os.MkdirTemp("", "sqlbatch-replay")
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
	db.MustExec(`CREATE TABLE cities (id INTEGER PRIMARY KEY, name TEXT NOT NULL)`)
	db.MustExec(`CREATE TABLE forecasts (id INTEGER PRIMARY KEY, forecast TEXT, failure_class TEXT, reason TEXT, batch INTEGER NOT NULL)`)
	for i, name := range []string{"Oslo", "Lima", "Atlantis", "Pune", "Kyiv", "Quito"} {
		db.MustExec(`INSERT INTO cities (id, name) VALUES (?, ?)`, i+1, name)
	}
	type City struct {
		ID   int64  `db:"id"`
		Name string `db:"name"`
	}
	srcConfig := sqlbatch.SourceConfig{Table: "cities", Key: []string{"id"}}
	src, err := sqlbatch.NewSource[City](db, srcConfig)
	if err != nil {
		log.Fatal(err)
	}
	sink, err := sqlbatch.NewSink(db, sqlbatch.SinkConfig[City, string]{
		Table: "forecasts", Key: []string{"id"}, Columns: []string{"id", "forecast", "failure_class", "reason"}, BatchColumn: "batch",
		Row: func(r batchenrich.Result[City, string]) ([]any, error) {
			if r.Err != nil { // the class is what a replay selects on; NULL once healed
				return []any{r.Item.ID, nil, batchenrich.Classify(r.Err).String(), batchenrich.FailureReason(r.Err)}, nil
			}
			return []any{r.Item.ID, r.Value, nil, nil}, nil
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

	outage := true
	forecast := batchenrich.EnricherFunc[City, string](func(ctx context.Context, c City) (string, error) {
		switch {
		case c.Name == "Atlantis":
			return "", batchenrich.Permanent(errors.New("no such city"))
		case outage && c.ID%2 == 0:
			return "", batchenrich.Transient(errors.New("status 503"))
		}
		return "sunny in " + c.Name, nil
	})
	opts := batchenrich.Options{BatchSize: 3, Durable: &batchenrich.Durable{Store: store, RunKey: "forecasts-1"}}
	r, err := batchenrich.New(src, forecast, sink, opts)
	if err != nil {
		log.Fatal(err)
	}
	rep, err := r.Run(ctx)
	fmt.Println("run: written", rep.Written, "failed", rep.Failed, err)

	outage = false
	failed, err := sqlbatch.NewFailedSource[City](db, sqlbatch.FailedSourceConfig{
		Source:      srcConfig, // the run's
		Table:       "forecasts",
		On:          map[string]string{"id": "id"},
		ClassColumn: "failure_class",
		// AllClasses: true would retry permanent failures too.
	})
	if err != nil {
		log.Fatal(err)
	}
	p, err := batchenrich.NewReplay(failed, forecast, sink, opts) // opts.Durable.RunKey: the run to replay
	if err != nil {
		log.Fatal(err)
	}
	rr, err := p.Run(ctx)
	fmt.Println(rr.ReplayKey, "retried", rr.Written, "recovered", rr.Enriched, err)

	var rows []struct {
		ID       int64   `db:"id"`
		Forecast *string `db:"forecast"`
		Reason   *string `db:"reason"`
		Batch    int     `db:"batch"`
	}
	if err := db.Select(&rows, `SELECT id, forecast, reason, batch FROM forecasts ORDER BY id`); err != nil {
		log.Fatal(err)
	}
	for _, row := range rows {
		if row.Reason != nil {
			fmt.Printf("%d (batch %d): failed: %s\n", row.ID, row.Batch, *row.Reason)
		} else {
			fmt.Printf("%d (batch %d): %s\n", row.ID, row.Batch, *row.Forecast)
		}
	}
	// Output:
	// run: written 6 failed 4 <nil>
	// forecasts-1#replay-1 retried 3 recovered 3 <nil>
	// 1 (batch 1): sunny in Oslo
	// 2 (batch 1): sunny in Lima
	// 3 (batch 1): failed: no such city
	// 4 (batch 2): sunny in Pune
	// 5 (batch 2): sunny in Kyiv
	// 6 (batch 2): sunny in Quito
}
