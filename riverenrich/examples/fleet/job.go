package main

// This file is the job itself, the part to copy: the Source of a
// partition (its travelers, by traveler_id), the Enricher (one profile API
// call per traveler, httpenrich), the Sink (one row per traveler with its
// partition, failures as invalid rows with their reason) and the
// riverenrich Client that runs each partition as a River job. It imports
// public packages only: batchenrich, httpenrich, riverenrich, sqlbatch,
// and the seed job's shared tables and validation (seedjob). The rest of
// this directory is the harness: flags, seeding, enqueueing and waiting,
// progress, final validation and summary.

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"time"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/examples/travelers/seedjob"
	"github.com/batchenrich/batchenrich/httpenrich"
	"github.com/batchenrich/batchenrich/riverenrich"
	"github.com/batchenrich/batchenrich/sqlbatch"
	"github.com/jmoiron/sqlx"
)

// jobSettings are what the job needs from the command line: this
// process's share of the work.
type jobSettings struct {
	profileURL    string        // the profile API
	concurrency   int           // HTTP calls in flight in this process, over all its partitions
	maxPartitions int           // partitions this process works on at once
	httpTimeout   time.Duration // each attempt's timeout
	httpRetries   int           // retries after the first attempt
	takeover      time.Duration // how often to look for partitions of dead workers
	slice         time.Duration // how long a job works before it goes back to the queue
}

// The seed job is examples/travelers' (package seedjob): the same tables,
// the same transform and the same rows, so that fleet and travelers can
// share a database.

// jobName is the seed job's name in River (riverenrich.Config.Job): fleet
// works only on runs enqueued under it.
const jobName = "travelers"

// Traveler is one row of traveler_batch_source.
type Traveler = seedjob.Traveler

// Profile is the enrichment of one traveler: seedjob.Transform of the
// profile API's answer.
type Profile = seedjob.Profile

// partitionColumn is travelers' nullable column recording a row's
// partition.
const partitionColumn = "partition_index"

var resultColumns = []string{
	"execution_id", "traveler_id", "traveler_name", "normalized_name",
	"profile_status", "profile_hash", "profile_payload", "is_valid",
	"validation_error", "processed_at", partitionColumn,
}

// resultRow maps a result of partition part to a row of
// traveler_batch_results; a failed enrichment is stored as an invalid row
// with its reason (seedjob.Failed), never dropped.
func resultRow(part int, r batchenrich.Result[Traveler, Profile]) ([]any, error) {
	t := r.Item
	now := time.Now().UTC().Format("2006-01-02T15:04:05.000000Z")
	if r.Err != nil {
		p, err := seedjob.Failed(t, r.Err)
		if err != nil {
			return nil, err
		}
		return []any{t.ExecutionID, t.TravelerID, t.TravelerName, p.NormalizedName, p.Status,
			p.Hash, string(p.Payload), false, p.ValidationError, now, part}, nil
	}
	p := r.Value
	var verr any
	if p.ValidationError != "" {
		verr = p.ValidationError
	}
	return []any{t.ExecutionID, t.TravelerID, t.TravelerName, p.NormalizedName, p.Status,
		p.Hash, string(p.Payload), p.ValidationError == "", verr, now, part}, nil
}

// sourceConfig reads partition p of executionID's travelers by
// traveler_id.
func sourceConfig(executionID string, p batchenrich.Partition) sqlbatch.SourceConfig {
	return sqlbatch.SourceConfig{
		Table:     "traveler_batch_source",
		Columns:   []string{"execution_id", "traveler_id", "traveler_name"},
		Key:       []string{"traveler_id"},
		Filter:    map[string]any{"execution_id": executionID},
		Partition: p,
	}
}

// newSource reads partition p of executionID's travelers.
func newSource(db *sqlx.DB, executionID string, p batchenrich.Partition) (*sqlbatch.Source[Traveler], error) {
	return sqlbatch.NewSource[Traveler](db, sourceConfig(executionID, p))
}

// newSink writes the results of partition part to traveler_batch_results,
// one row per (execution_id, traveler_id), with resultRow.
func newSink(db *sqlx.DB, part int) (*sqlbatch.Sink[Traveler, Profile], error) {
	return sqlbatch.NewSink(db, sqlbatch.SinkConfig[Traveler, Profile]{
		Table:       "traveler_batch_results",
		Key:         []string{"execution_id", "traveler_id"},
		Columns:     resultColumns,
		Row:         func(r batchenrich.Result[Traveler, Profile]) ([]any, error) { return resultRow(part, r) },
		BatchColumn: "batch_number",
	})
}

// schema is travelers' PostgreSQL schema (seedjob.Schema), plus
// partitionColumn.
var schema = append(seedjob.Schema("postgres"),
	`ALTER TABLE traveler_batch_results ADD COLUMN IF NOT EXISTS `+partitionColumn+` INTEGER`)

// params are the run's parameters, carried by its jobs to every worker.
type params struct {
	BatchSize   int `json:"batch_size"`
	MaxBatches  int `json:"max_batches"`
	Concurrency int `json:"concurrency"` // per partition
}

// newClient builds the riverenrich Client working on the seed job's
// partitions, and its Enricher (close it after the Client stopped). A
// budget, if not nil, is shared with the other processes calling the API.
func newClient(db *sqlx.DB, store *sqlbatch.CheckpointStore, cfg jobSettings, budget *sqlbatch.Budget, logger *slog.Logger) (*riverenrich.Client[Traveler, Profile], *httpenrich.Enricher[Traveler, json.RawMessage, Profile], error) {
	pool, err := httpenrich.PoolFromEnv()
	if err != nil {
		return nil, nil, err
	}
	hc := httpenrich.Config[Traveler, json.RawMessage, Profile]{
		URL: cfg.profileURL,
		Request: func(t Traveler) (httpenrich.Params, error) {
			return httpenrich.Params{Query: url.Values{
				"traveler_id":   {strconv.FormatInt(t.TravelerID, 10)},
				"traveler_name": {t.TravelerName},
			}}, nil
		},
		Validate: func(t Traveler, resp *httpenrich.Response[json.RawMessage]) (Profile, error) {
			return seedjob.Transform(t, resp.Status, resp.Body), nil
		},
		PathParams:     []string{}, // Request fills none: New refuses a -profile-url with a {parameter}
		Pool:           pool.ForConcurrency(cfg.concurrency),
		AttemptTimeout: cfg.httpTimeout,
		MaxAttempts:    cfg.httpRetries + 1,
	}
	if budget != nil {
		hc.Budget = budget
		if budget.Adapts() { // an adaptive budget shares the Enricher's adaptive limit
			hc.Adaptive = &httpenrich.Adaptive{MaxConcurrency: cfg.concurrency}
		}
	}
	enr, err := httpenrich.New(hc)
	if err != nil {
		return nil, nil, err
	}
	c, err := riverenrich.New(riverenrich.Config[Traveler, Profile]{
		Job:   jobName,
		DB:    db.DB,
		Store: store,
		Source: func(ctx context.Context, job riverenrich.Job) (batchenrich.Source[Traveler], error) {
			return newSource(db, job.Run, job.Partition)
		},
		Enricher: enr,
		Sink: func(ctx context.Context, job riverenrich.Job) (batchenrich.Sink[Traveler, Profile], error) {
			return newSink(db, job.Partition.Index)
		},
		Options: func(job riverenrich.Job) (batchenrich.Options, error) {
			var p params
			if err := json.Unmarshal(job.Params, &p); err != nil {
				return batchenrich.Options{}, fmt.Errorf("job params: %w", err)
			}
			return batchenrich.Options{BatchSize: p.BatchSize, MaxBatches: p.MaxBatches, Concurrency: p.Concurrency}, nil
		},
		Concurrency:      cfg.concurrency,
		MaxPartitions:    cfg.maxPartitions,
		Slice:            cfg.slice,
		TakeoverInterval: cfg.takeover,
		Logger:           logger,
	})
	if err != nil {
		enr.Close()
		return nil, nil, err
	}
	return c, enr, nil
}
