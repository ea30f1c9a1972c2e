package main

// This file is the job itself, the part to copy: the Source (the
// travelers of one execution, by traveler_id), the Enricher (one profile
// API call per traveler, httpenrich), the Sink (one row per traveler,
// failures as invalid rows with their reason and class, sqlbatch) and the
// Runner's wiring, with a durable checkpoint store (bulk.go adds the
// -bulk variant of the Enricher: one request per group). It imports public
// packages only: batchenrich, httpenrich, sqlbatch, and the seed job's
// shared tables and validation (seedjob). Everything else in this
// directory is the seed's harness: flags, seeding, schema checks,
// progress, replay and partition options, final validation and summary.

import (
	"encoding/json"
	"errors"
	"net/url"
	"strconv"
	"time"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/examples/travelers/seedjob"
	"github.com/batchenrich/batchenrich/httpenrich"
	"github.com/batchenrich/batchenrich/sqlbatch"
	"github.com/jmoiron/sqlx"
)

// jobSettings are what the job needs from the command line.
type jobSettings struct {
	executionID string        // the run key; rows are keyed by it
	profileURL  string        // the profile API; may use {traveler_id} and {traveler_name}
	pathParams  []string      // the {parameters} profileURL uses
	batchSize   int           // rows per batch
	maxBatches  int           // batches at most
	concurrency int           // HTTP calls in flight at most
	httpTimeout time.Duration // each attempt's timeout
	httpRetries int           // retries after the first attempt
	adaptive    bool          // adapt the calls in flight to what the API admits, concurrency the ceiling
	bulk        int           // travelers per request (bulk.go), 0 for one request each
	overlap     bool          // enrich batch n+1 while batch n is written
}

// Traveler is one row of traveler_batch_source (package seedjob, shared
// with the fleet and otelenrich examples).
type Traveler = seedjob.Traveler

// Profile is the enrichment of one traveler: seedjob.Transform of the
// profile API's answer.
type Profile = seedjob.Profile

// Failure columns. The seed's traveler_batch_results keeps its shape;
// these two nullable columns are added next to it, NULL in a valid row,
// so that a replay can choose what to retry.
const (
	classColumn    = "failure_class"    // batchenrich.Class.String() of the failure
	attemptsColumn = "failure_attempts" // requests sent for the item, retries included
)

// failureColumns are the values of the failure columns for r.
func failureColumns(r batchenrich.Result[Traveler, Profile]) (class, attempts any) {
	if r.Err == nil {
		return nil, nil
	}
	n := 0
	var he *httpenrich.Error
	if errors.As(r.Err, &he) {
		n = he.Attempts
	}
	return batchenrich.Classify(r.Err).String(), n
}

// resultColumns are the columns of traveler_batch_results the Sink fills;
// batch_number is filled by the Sink itself.
var resultColumns = []string{
	"execution_id", "traveler_id", "traveler_name", "normalized_name",
	"profile_status", "profile_hash", "profile_payload", "is_valid",
	"validation_error", "processed_at", classColumn, attemptsColumn,
}

// resultRow maps a result to a row of traveler_batch_results. A failed
// enrichment (HTTP error after the retries, timeout, non-JSON body) is
// stored as an invalid row with the reason (seedjob.Failed): never
// dropped. The reason is batchenrich.FailureReason's ("status 503 after 4
// attempts", "malformed JSON: …"): it names no host and no batch, so it
// stays true when a replay rewrites the row keeping its batch_number.
func resultRow(r batchenrich.Result[Traveler, Profile]) ([]any, error) {
	t := r.Item
	class, attempts := failureColumns(r)
	// ISO 8601 text: TIMESTAMPTZ in PostgreSQL parses it, and SQLite's
	// date functions read it.
	now := time.Now().UTC().Format("2006-01-02T15:04:05.000000Z")
	if r.Err != nil {
		p, err := seedjob.Failed(t, r.Err)
		if err != nil {
			return nil, err
		}
		return []any{t.ExecutionID, t.TravelerID, t.TravelerName, p.NormalizedName, p.Status,
			p.Hash, string(p.Payload), false, p.ValidationError, now, class, attempts}, nil
	}
	p := r.Value
	var verr any // NULL when valid
	if p.ValidationError != "" {
		verr = p.ValidationError
	}
	return []any{t.ExecutionID, t.TravelerID, t.TravelerName, p.NormalizedName, p.Status,
		p.Hash, string(p.Payload), p.ValidationError == "", verr, now, class, attempts}, nil
}

// sourceConfig reads the travelers of executionID by traveler_id.
func sourceConfig(executionID string) sqlbatch.SourceConfig {
	return sqlbatch.SourceConfig{
		Table:   "traveler_batch_source",
		Columns: []string{"execution_id", "traveler_id", "traveler_name"},
		Key:     []string{"traveler_id"},
		Filter:  map[string]any{"execution_id": executionID},
	}
}

// newSink writes results to traveler_batch_results, one row per
// (execution_id, traveler_id), with resultRow.
func newSink(db *sqlx.DB) (*sqlbatch.Sink[Traveler, Profile], error) {
	return sqlbatch.NewSink(db, sqlbatch.SinkConfig[Traveler, Profile]{
		Table:       "traveler_batch_results",
		Key:         []string{"execution_id", "traveler_id"},
		Columns:     resultColumns,
		Row:         resultRow,
		BatchColumn: "batch_number",
	})
}

// enricher is the job's Enricher: httpenrich's, per traveler or (-bulk)
// per group of travelers.
type enricher interface {
	batchenrich.Enricher[Traveler, Profile]
	Close() error
}

// job is the seed fixture's pipeline, built on batchenrich's defaults.
type job struct {
	source *sqlbatch.Source[Traveler]
	enr    enricher
	sink   *sqlbatch.Sink[Traveler, Profile]
	store  *sqlbatch.CheckpointStore
}

// newJob wires the Source, Enricher, Sink and checkpoint store for cfg.
func newJob(db *sqlx.DB, cfg jobSettings) (*job, error) {
	src, err := sqlbatch.NewSource[Traveler](db, sourceConfig(cfg.executionID))
	if err != nil {
		return nil, err
	}
	pool, err := httpenrich.PoolFromEnv()
	if err != nil {
		return nil, err
	}
	hc := httpenrich.Config[Traveler, json.RawMessage, Profile]{
		URL: cfg.profileURL,
		Request: func(t Traveler) (httpenrich.Params, error) {
			values := map[string]string{"traveler_id": strconv.FormatInt(t.TravelerID, 10), "traveler_name": t.TravelerName}
			p := httpenrich.Params{Query: url.Values{
				"traveler_id":   {values["traveler_id"]},
				"traveler_name": {values["traveler_name"]},
			}}
			if len(cfg.pathParams) > 0 {
				p.Path = make(map[string]string, len(cfg.pathParams))
				for _, name := range cfg.pathParams {
					p.Path[name] = values[name]
				}
			}
			return p, nil
		},
		PathParams: cfg.pathParams, // New refuses a -profile-url this Request cannot fill
		Validate: func(t Traveler, resp *httpenrich.Response[json.RawMessage]) (Profile, error) {
			return seedjob.Transform(t, resp.Status, resp.Body), nil
		},
		Pool:           pool.ForConcurrency(cfg.concurrency),
		AttemptTimeout: cfg.httpTimeout,
		MaxAttempts:    cfg.httpRetries + 1,
	}
	if cfg.adaptive {
		// AIMD on 429, 503 and latency under the ceiling (httpenrich.Adaptive).
		hc.Adaptive = &httpenrich.Adaptive{MaxConcurrency: cfg.concurrency}
	}
	var enr enricher
	if cfg.bulk > 0 {
		enr, err = newBulkEnricher(hc, cfg.bulk)
	} else {
		enr, err = httpenrich.New(hc)
	}
	if err != nil {
		return nil, err
	}
	sink, err := newSink(db)
	if err != nil {
		enr.Close()
		return nil, err
	}
	store, err := sqlbatch.NewCheckpointStore(db, sqlbatch.CheckpointConfig{})
	if err != nil {
		enr.Close()
		return nil, err
	}
	return &job{source: src, enr: enr, sink: sink, store: store}, nil
}

// options are the Runner's options for cfg; tr, if not nil, follows the
// run (the harness's progress bar).
func (j *job) options(cfg jobSettings, tr batchenrich.Tracer) batchenrich.Options {
	return batchenrich.Options{
		BatchSize:   cfg.batchSize,
		MaxBatches:  cfg.maxBatches,
		Concurrency: cfg.concurrency,
		Overlap:     cfg.overlap,
		Durable: &batchenrich.Durable{
			Store:  j.store,
			RunKey: cfg.executionID,
		},
		Tracer: tr,
	}
}

// runner returns the job's Runner for cfg: running it again with the
// same executionID resumes after the last committed batch.
func (j *job) runner(cfg jobSettings, tr batchenrich.Tracer) (*batchenrich.Runner[Traveler, Profile], error) {
	return batchenrich.New[Traveler, Profile](j.source, j.enr, j.sink, j.options(cfg, tr))
}
