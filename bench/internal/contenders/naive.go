package contenders

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"

	"github.com/batchenrich/batchenrich/bench/internal/harness"
	"github.com/batchenrich/batchenrich/bench/internal/job"
	_ "github.com/lib/pq" // driver "postgres"
	"golang.org/x/sync/errgroup"
)

// Naive is the job as users write it today, shaped like the fixture: batch
// windows read with OFFSET/LIMIT one after the other; inside a batch the
// profile calls run in an errgroup limited to Concurrency, with the default
// http.Client; then each row is stored with its own INSERT … ON CONFLICT.
func Naive(ctx context.Context, cfg harness.Config) (harness.Stats, error) {
	var st harness.Stats
	db, err := sql.Open("postgres", cfg.DatabaseURL)
	if err != nil {
		return st, err
	}
	defer db.Close()

	for b := 0; cfg.MaxBatches == 0 || b < cfg.MaxBatches; b++ {
		travelers, err := naiveWindow(ctx, db, cfg, b*cfg.BatchSize)
		if err != nil {
			return st, err
		}
		if len(travelers) == 0 {
			break
		}
		rows := make([]job.Row, len(travelers))
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(cfg.Concurrency)
		for i, t := range travelers {
			g.Go(func() error {
				status, body, err := get(gctx, http.DefaultClient, job.ProfileURL(cfg.TargetURL, t))
				if err != nil {
					return err
				}
				rows[i] = job.Transform(t, b+1, status, body)
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return st, fmt.Errorf("naive: batch %d: %w", b+1, err)
		}
		for _, r := range rows {
			if _, err := db.ExecContext(ctx, `INSERT INTO traveler_batch_results
	(execution_id, traveler_id, traveler_name, normalized_name, profile_status, profile_hash, profile_payload, is_valid, validation_error, batch_number)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (execution_id, traveler_id) DO UPDATE SET `+upsertColumns,
				cfg.ExecutionID, r.TravelerID, r.TravelerName, r.NormalizedName, r.ProfileStatus, r.ProfileHash,
				string(r.ProfilePayload), r.IsValid, sql.NullString{String: r.ValidationError, Valid: r.ValidationError != ""},
				r.BatchNumber); err != nil {
				return st, fmt.Errorf("naive: store traveler %d: %w", r.TravelerID, err)
			}
		}
		st.Written += len(rows)
		st.Batches++
		if len(travelers) < cfg.BatchSize {
			break
		}
	}
	return st, nil
}

func naiveWindow(ctx context.Context, db *sql.DB, cfg harness.Config, offset int) ([]job.Traveler, error) {
	rs, err := db.QueryContext(ctx, `SELECT traveler_id, traveler_name FROM traveler_batch_source
WHERE execution_id = $1 ORDER BY traveler_id OFFSET $2 LIMIT $3`, cfg.ExecutionID, offset, cfg.BatchSize)
	if err != nil {
		return nil, fmt.Errorf("naive: read window at %d: %w", offset, err)
	}
	return scanTravelers(rs, cfg.BatchSize)
}
