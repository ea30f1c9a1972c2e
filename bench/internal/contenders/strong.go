package contenders

import (
	"context"
	"database/sql"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/batchenrich/batchenrich/bench/internal/harness"
	"github.com/batchenrich/batchenrich/bench/internal/job"
	"github.com/destel/rill"
	"github.com/lib/pq"
)

// strongWriters is the number of concurrent upsert writers of Strong.
const strongWriters = 4

// strongFlush is how long Strong lets a partial write batch wait for more
// rows before writing it.
const strongFlush = 100 * time.Millisecond

// Strong is the job as an expert writes it with today's best libraries: one
// streaming pipeline (github.com/destel/rill) of keyset window reads,
// Concurrency profile calls over a keep-alive transport tuned for one host,
// and set-based unnest upserts of BatchSize rows from several concurrent
// writers. Batches overlap freely: no strict order, no retries, no resume.
func Strong(ctx context.Context, cfg harness.Config) (harness.Stats, error) {
	var st harness.Stats
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // on error, stops the stages rill drains in the background

	db, err := sql.Open("postgres", cfg.DatabaseURL)
	if err != nil {
		return st, err
	}
	defer db.Close()
	db.SetMaxOpenConns(strongWriters + 1)
	db.SetMaxIdleConns(strongWriters + 1)

	client, tr := tunedClient(cfg.Concurrency)
	defer tr.CloseIdleConnections()

	type item struct {
		t     job.Traveler
		batch int
	}
	travelers := rill.Generate(func(send func(item), sendErr func(error)) {
		var last int64
		for b := 1; cfg.MaxBatches == 0 || b <= cfg.MaxBatches; b++ {
			page, err := keysetWindow(ctx, db, cfg, last)
			if err != nil {
				sendErr(err)
				return
			}
			for _, t := range page {
				send(item{t, b})
			}
			if len(page) < cfg.BatchSize {
				return
			}
			last = page[len(page)-1].ID
		}
	})
	travelers = rill.Buffer(travelers, cfg.BatchSize)

	rows := rill.Map(travelers, cfg.Concurrency, func(it item) (job.Row, error) {
		status, body, err := get(ctx, client, job.ProfileURL(cfg.TargetURL, it.t))
		if err != nil {
			return job.Row{}, err
		}
		return job.Transform(it.t, it.batch, status, body), nil
	})

	var written, batches atomic.Int64
	err = rill.ForEach(rill.Batch(rows, cfg.BatchSize, strongFlush), strongWriters, func(rs []job.Row) error {
		if err := upsertUnnest(ctx, db, cfg.ExecutionID, rs); err != nil {
			return err
		}
		written.Add(int64(len(rs)))
		batches.Add(1)
		return nil
	})
	st.Written, st.Batches = int(written.Load()), int(batches.Load())
	if err != nil {
		return st, fmt.Errorf("strong: %w", err)
	}
	return st, nil
}

func keysetWindow(ctx context.Context, db *sql.DB, cfg harness.Config, after int64) ([]job.Traveler, error) {
	rs, err := db.QueryContext(ctx, `SELECT traveler_id, traveler_name FROM traveler_batch_source
WHERE execution_id = $1 AND traveler_id > $2 ORDER BY traveler_id LIMIT $3`, cfg.ExecutionID, after, cfg.BatchSize)
	if err != nil {
		return nil, fmt.Errorf("read window after %d: %w", after, err)
	}
	return scanTravelers(rs, cfg.BatchSize)
}

// upsertUnnest stores rows with one INSERT … SELECT FROM unnest(arrays).
func upsertUnnest(ctx context.Context, db *sql.DB, exec string, rows []job.Row) error {
	n := len(rows)
	ids := make([]int64, n)
	names := make([]string, n)
	norms := make([]string, n)
	statuses := make([]int64, n)
	hashes := make([]string, n)
	payloads := make([]string, n)
	valid := make([]bool, n)
	verrs := make([]string, n)
	batchNums := make([]int64, n)
	for i, r := range rows {
		ids[i], names[i], norms[i] = r.TravelerID, r.TravelerName, r.NormalizedName
		statuses[i], hashes[i], payloads[i] = int64(r.ProfileStatus), r.ProfileHash, string(r.ProfilePayload)
		valid[i], verrs[i], batchNums[i] = r.IsValid, r.ValidationError, int64(r.BatchNumber)
	}
	_, err := db.ExecContext(ctx, `INSERT INTO traveler_batch_results
	(execution_id, traveler_id, traveler_name, normalized_name, profile_status, profile_hash, profile_payload, is_valid, validation_error, batch_number)
SELECT $1, u.id, u.name, u.norm, u.status, u.hash, u.payload, u.valid, NULLIF(u.verr, ''), u.batch
FROM unnest($2::int[], $3::text[], $4::text[], $5::int[], $6::text[], $7::jsonb[], $8::bool[], $9::text[], $10::int[])
	AS u(id, name, norm, status, hash, payload, valid, verr, batch)
ON CONFLICT (execution_id, traveler_id) DO UPDATE SET `+upsertColumns,
		exec, pq.Array(ids), pq.Array(names), pq.Array(norms), pq.Array(statuses), pq.Array(hashes),
		pq.Array(payloads), pq.Array(valid), pq.Array(verrs), pq.Array(batchNums))
	if err != nil {
		return fmt.Errorf("upsert %d rows: %w", n, err)
	}
	return nil
}
