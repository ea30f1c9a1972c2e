package sqlbatch_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/internal/testdb"
	"github.com/batchenrich/batchenrich/sqlbatch"
)

// benchBatch makes batch num of size results with fresh keys. With wide,
// each payload is about 700 bytes of JSON, the size of an httpbin
// /anything answer; else about 30.
func benchBatch(num, size int, wide bool) batchenrich.Batch[Traveler, Enriched] {
	b := batchenrich.Batch[Traveler, Enriched]{Number: num, Results: make([]batchenrich.Result[Traveler, Enriched], size)}
	for i := range b.Results {
		id := int64(num*size + i)
		tags := map[string]string{"k": "v"}
		if wide {
			tags = wideTags(id)
		}
		b.Results[i] = batchenrich.Result[Traveler, Enriched]{Index: i,
			Item:  Traveler{ExecutionID: "bench", TravelerID: id, Name: "t"},
			Value: Enriched{Score: i, Tags: tags}}
	}
	return b
}

// wideTags is about 700 bytes of JSON, shaped like the headers and args
// of an httpbin /anything answer.
func wideTags(id int64) map[string]string {
	return map[string]string{
		"Accept":          "application/json",
		"Accept-Encoding": "gzip",
		"Host":            "127.0.0.1:41234",
		"User-Agent":      "Go-http-client/1.1",
		"X-Request-Id":    fmt.Sprintf("%032x", id),
		"method":          "GET",
		"origin":          "127.0.0.1",
		"traveler_id":     fmt.Sprint(id),
		"traveler_name":   fmt.Sprintf("Traveler %d", id),
		"url":             fmt.Sprintf("http://127.0.0.1:41234/anything?traveler_id=%d&traveler_name=Traveler%%20%d", id, id),
		"comment":         "an echoed profile as the job stores it, padded to a realistic width: lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua; ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat.",
	}
}

// BenchmarkSink writes batches of fresh rows, with each strategy, and
// compares them with a raw COPY of the same rows into the same table
// (no upsert, no conflict handling): the floor. payload=small rows carry
// about 30 bytes of JSON, payload=wide about 700 (an httpbin answer).
func BenchmarkSink(b *testing.B) {
	for _, k := range testdb.AllKinds {
		b.Run(string(k), func(b *testing.B) {
			db := testdb.Open(b, k)
			createResults(b, k, db)
			modes := []string{"values"}
			switch k {
			case testdb.PostgreSQL:
				modes = append(modes, "copy", "unnest", "auto", "upsert-only", "rawcopy")
			case testdb.PGX:
				modes = append(modes, "copy", "auto", "upsert-only") // unnest and rawcopy are lib/pq code
			}
			num := 0
			for _, payload := range []string{"small", "wide"} {
				for _, size := range []int{50, 100, 300, 1000} {
					for _, mode := range modes {
						b.Run(fmt.Sprintf("payload=%s/rows=%d/%s", payload, size, mode), func(b *testing.B) {
							s := resultsSink(b, db)
							switch mode {
							case "values":
								s.UseValues()
							case "copy":
								s.UseCopy()
							case "unnest":
								s.UseUnnest()
							case "upsert-only":
								s.UseUpsertOnly()
							}
							ctx := context.Background()
							b.ReportAllocs()
							for b.Loop() {
								num++
								batch := benchBatch(num, size, payload == "wide")
								var err error
								if mode == "rawcopy" {
									err = rawCopy(ctx, db, batch)
								} else {
									err = s.Write(ctx, batch)
								}
								if err != nil {
									b.Fatal(err)
								}
							}
							b.ReportMetric(float64(size*b.N)/b.Elapsed().Seconds(), "rows/s")
						})
					}
				}
			}
		})
	}
}

// rawCopy COPYs the rows of batch straight into the results table.
func rawCopy(ctx context.Context, db *sqlx.DB, batch batchenrich.Batch[Traveler, Enriched]) error {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `COPY traveler_batch_results (execution_id, traveler_id, payload, is_valid, validation_error, processed_at, batch_number) FROM STDIN`)
	if err != nil {
		return err
	}
	for _, r := range batch.Results {
		if _, err := stmt.ExecContext(ctx, r.Item.ExecutionID, r.Item.TravelerID, sqlbatch.JSON[Enriched]{V: r.Value}, true, nil, fixedTime, batch.Number); err != nil {
			return err
		}
	}
	if _, err := stmt.ExecContext(ctx); err != nil {
		return err
	}
	if err := stmt.Close(); err != nil {
		return err
	}
	return tx.Commit()
}

// BenchmarkSource reads the first and the 1000th window of 100 rows of a
// 100,000-row table: flat with keyset paging, growing with OFFSET.
func BenchmarkSource(b *testing.B) {
	const rows, window = 100_000, 100
	for _, k := range testdb.Kinds {
		b.Run(string(k), func(b *testing.B) {
			db := testdb.Open(b, k)
			mustExec(b, db, `CREATE TABLE traveler_batch_source (execution_id TEXT NOT NULL, traveler_id BIGINT NOT NULL, name TEXT NOT NULL,
				PRIMARY KEY (execution_id, traveler_id))`)
			if k == testdb.PostgreSQL {
				mustExec(b, db, `INSERT INTO traveler_batch_source SELECT 'e1', i, 'traveler ' || i FROM generate_series(1, $1) AS i`, rows)
				mustExec(b, db, `ANALYZE traveler_batch_source`)
			} else {
				mustExec(b, db, `WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ?)
					INSERT INTO traveler_batch_source SELECT 'e1', i, 'traveler ' || i FROM s`, rows)
			}
			for _, paging := range []sqlbatch.Paging{sqlbatch.PageByKey, sqlbatch.PageByOffset} {
				name := map[sqlbatch.Paging]string{sqlbatch.PageByKey: "keyset", sqlbatch.PageByOffset: "offset"}[paging]
				src := travelerSource(b, db, "e1", paging)
				for _, nth := range []int{1, 1000} {
					var c batchenrich.Cursor
					if nth > 1 {
						c = batchenrich.Cursor(fmt.Sprint((nth - 1) * window))
						if paging == sqlbatch.PageByKey {
							c = batchenrich.Cursor(fmt.Sprintf("[%d]", (nth-1)*window))
						}
					}
					b.Run(fmt.Sprintf("%s/window=%d", name, nth), func(b *testing.B) {
						b.ReportAllocs()
						for b.Loop() {
							items, _, err := src.Read(context.Background(), c, window)
							if err != nil || len(items) != window || items[0].TravelerID != int64((nth-1)*window+1) {
								b.Fatalf("read %d items, %v", len(items), err)
							}
						}
					})
				}
			}
		})
	}
}
