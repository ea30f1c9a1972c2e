package sqlbatch_test

import (
	"context"
	"log"
	"os"

	"github.com/jmoiron/sqlx"

	"github.com/batchenrich/batchenrich/sqlbatch"
)

// Create a job's tables at start-up, safely from several processes
// starting at once.
func ExampleExecDDL() {
	db, err := sqlx.Open("postgres", os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	err = sqlbatch.ExecDDL(context.Background(), db,
		`CREATE TABLE IF NOT EXISTS results (
			execution_id TEXT NOT NULL,
			item_id BIGINT NOT NULL,
			payload JSONB,
			batch_number INTEGER NOT NULL,
			PRIMARY KEY (execution_id, item_id))`,
		`CREATE INDEX IF NOT EXISTS results_batch ON results (execution_id, batch_number)`,
	)
	if err != nil {
		log.Fatal(err)
	}
}
