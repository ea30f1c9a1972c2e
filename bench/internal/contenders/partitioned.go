package contenders

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/jmoiron/sqlx"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/bench/internal/harness"
	"github.com/batchenrich/batchenrich/bench/internal/job"
	"github.com/batchenrich/batchenrich/httpenrich"
	"github.com/batchenrich/batchenrich/sqlbatch"
)

// Partitions is the partition count of the partitioned contenders: the
// run split into 8 key partitions, each at cfg.Concurrency in flight (so
// 8 × cfg.Concurrency in total), each numbering its own batches.
const Partitions = 8

// LibraryPartitioned is Library split into Partitions key partitions run
// at once in one process (batchenrich.NewPartitioned): each partition a
// Runner of its own over an sqlbatch.Source reading its keys, the
// enrichments bounded by Partitions × cfg.Concurrency in total (each
// partition may take any of them).
func LibraryPartitioned(ctx context.Context, cfg harness.Config) (harness.Stats, error) {
	var st harness.Stats
	db, err := sqlx.Open("postgres", cfg.DatabaseURL)
	if err != nil {
		return st, err
	}
	defer db.Close()
	db.SetMaxOpenConns(3*Partitions + 2)
	db.SetMaxIdleConns(3*Partitions + 2)
	enr, err := libEnricher(cfg, Partitions*cfg.Concurrency)
	if err != nil {
		return st, err
	}
	defer enr.Close()
	store, err := sqlbatch.NewCheckpointStore(db, sqlbatch.CheckpointConfig{})
	if err != nil {
		return st, err
	}
	if err := store.CreateTable(ctx); err != nil {
		return st, err
	}
	source := func(p batchenrich.Partition) (batchenrich.Source[libTraveler], error) { return libSource(db, cfg, p) }
	sink := func(p batchenrich.Partition) (batchenrich.Sink[libTraveler, job.Row], error) {
		return libPartitionSink(db, cfg, p.Index)
	}
	// Options.Concurrency is the total over the partitions.
	r, err := batchenrich.NewPartitioned(Partitions, source, enr, sink, batchenrich.Options{BatchSize: cfg.BatchSize, MaxBatches: cfg.MaxBatches,
		Concurrency: Partitions * cfg.Concurrency, Durable: &batchenrich.Durable{Store: store, RunKey: cfg.ExecutionID}})
	if err != nil {
		return st, err
	}
	rep, err := r.Run(ctx)
	st.Written, st.Batches, st.Phase = rep.Written, rep.BatchesRun, rep.Duration
	if err != nil {
		return st, fmt.Errorf("batchenrich: %w", err)
	}
	return st, nil
}

// libSource reads partition p of the run's travelers by key.
func libSource(db *sqlx.DB, cfg harness.Config, p batchenrich.Partition) (*sqlbatch.Source[libTraveler], error) {
	return sqlbatch.NewSource[libTraveler](db, sqlbatch.SourceConfig{
		Table:     "traveler_batch_source",
		Key:       []string{"traveler_id"},
		Filter:    map[string]any{"execution_id": cfg.ExecutionID},
		Columns:   []string{"traveler_id", "traveler_name"},
		Partition: p,
	})
}

// libEnricher is Library's Enricher with a pool for concurrency calls.
func libEnricher(cfg harness.Config, concurrency int) (*httpenrich.Enricher[libTraveler, job.Echo, job.Row], error) {
	return httpenrich.New(libEnricherConfig(cfg, concurrency))
}

// libEnricherConfig is the configuration of libEnricher.
func libEnricherConfig(cfg harness.Config, concurrency int) httpenrich.Config[libTraveler, job.Echo, job.Row] {
	return httpenrich.Config[libTraveler, job.Echo, job.Row]{
		URL: strings.TrimSuffix(cfg.TargetURL, "/") + "/anything",
		Request: func(t libTraveler) (httpenrich.Params, error) {
			return httpenrich.Params{Query: url.Values{
				"traveler_id":   {strconv.FormatInt(t.ID, 10)},
				"traveler_name": {t.Name},
			}}, nil
		},
		Validate: func(t libTraveler, resp *httpenrich.Response[job.Echo]) (job.Row, error) {
			return job.FromEcho(job.Traveler(t), 0, resp.Status, resp.Raw, &resp.Body), nil
		},
		Pool: httpenrich.Pool{}.ForConcurrency(concurrency),
	}
}

// libPartitionSink is Library's Sink, recording the partition.
func libPartitionSink(db *sqlx.DB, cfg harness.Config, part int) (*sqlbatch.Sink[libTraveler, job.Row], error) {
	return sqlbatch.NewSink(db, sqlbatch.SinkConfig[libTraveler, job.Row]{
		Table:       "traveler_batch_results",
		Key:         []string{"execution_id", "traveler_id"},
		Columns:     append(append([]string(nil), libColumns...), "partition_index"),
		BatchColumn: "batch_number",
		Row: func(r batchenrich.Result[libTraveler, job.Row]) ([]any, error) {
			row := r.Value
			if r.Err != nil {
				row = libFailedRow(r.Item, r.Err)
			}
			var verr any
			if row.ValidationError != "" {
				verr = row.ValidationError
			}
			return []any{cfg.ExecutionID, row.TravelerID, row.TravelerName, row.NormalizedName, row.ProfileStatus,
				row.ProfileHash, string(row.ProfilePayload), row.IsValid, verr, part}, nil
		},
	})
}
