package main

import (
	"context"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/batchenrich/batchenrich/internal/testdb"
)

// TestPartitionsFlag runs the seed job split into 4 partitions: every row
// stored once with its partition, batch numbers counted within each
// partition (max_batch_number is the largest over them), -max-batches per
// partition, resume, and a changed -partitions refused before any request.
func TestPartitionsFlag(t *testing.T) {
	for _, k := range testdb.Kinds {
		t.Run(string(k), func(t *testing.T) {
			dsn := dsnFor(t, k)
			args := []string{"-dsn", dsn, "-seed-rows", "400", "-batch-size", "20", "-max-batches", "2",
				"-partitions", "4", "-concurrency", "8", "-json", "-execution-id", "parts-1"}
			code, stdout, stderr := program(t, context.Background(), args...)
			if code != exitOK {
				t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
			}
			s := summaryOf(t, stdout)
			// 4 partitions of about 100 rows, 2 batches of 20 each.
			if s.Status != "ok" || s.Data.ExpectedRows != 160 || s.Data.StoredRows != 160 || s.Data.MaxBatchNumber != 2 ||
				s.Execution.BatchesRun != 8 || s.Configured.Partitions != 4 || s.Configured.Concurrency != 8 {
				t.Fatalf("capped run: %+v", s)
			}
			db := openTestDB(t, k, dsn)
			checkPartitionRows(t, db, "parts-1", 4)

			// The rest, with no cap low enough to stop it.
			args[7] = "100"
			code, stdout, stderr = program(t, context.Background(), args...)
			s = summaryOf(t, stdout)
			if code != exitOK || s.Data.StoredRows != 400 || s.Data.ExpectedRows != 400 || s.Execution.BatchesSkipped != 8 {
				t.Fatalf("resumed: exit %d %+v\n%s", code, s, stderr)
			}
			checkPartitionRows(t, db, "parts-1", 4)

			// Another partition count for the same run: refused, nothing sent.
			args[9] = "2"
			code, _, stderr = program(t, context.Background(), args...)
			if code != exitUsage || !strings.Contains(stderr, "partition count changed") || !strings.Contains(stderr, "recorded with 4 partitions") ||
				strings.Contains(stderr, "status") {
				t.Fatalf("-partitions 2 after 4: exit %d\n%s", code, stderr)
			}
			two := stderr
			// One partition (the seed's run) on the same key: refused too,
			// with the same line but for the count.
			code, _, stderr = program(t, context.Background(), append(args[:9:9], "1", "-json", "-execution-id", "parts-1")...)
			if code != exitUsage || strings.ReplaceAll(stderr, "this run has 1", "this run has 2") != two {
				t.Fatalf("-partitions 1 after 4: exit %d\n%s\nwant as -partitions 2:\n%s", code, stderr, two)
			}
		})
	}
}

func openTestDB(t *testing.T, k testdb.Kind, dsn string) *sqlx.DB {
	t.Helper()
	driver := "postgres"
	if k == testdb.SQLite {
		driver, dsn = "sqlite", testdb.SQLiteDSN(dsn)
	}
	db, err := sqlx.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// checkPartitionRows asserts every stored row of the run names a partition
// and that each partition's batches are numbered 1, 2, … with no gap.
func checkPartitionRows(t *testing.T, db *sqlx.DB, exec string, parts int) {
	t.Helper()
	var rows []struct {
		Part    *int `db:"part"`
		Batches int  `db:"batches"`
		MaxB    int  `db:"max_b"`
		MinB    int  `db:"min_b"`
	}
	if err := db.Select(&rows, db.Rebind(`SELECT partition_index AS part, count(DISTINCT batch_number) AS batches,
		max(batch_number) AS max_b, min(batch_number) AS min_b
		FROM traveler_batch_results WHERE execution_id = ? GROUP BY partition_index`), exec); err != nil {
		t.Fatal(err)
	}
	if len(rows) != parts {
		t.Fatalf("%d partitions in the results, want %d: %+v", len(rows), parts, rows)
	}
	for _, r := range rows {
		if r.Part == nil || *r.Part < 0 || *r.Part >= parts || r.MinB != 1 || r.MaxB != r.Batches {
			t.Fatalf("partition rows %+v: want an index and batches 1..n", r)
		}
	}
}
