package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/examples/travelers/seedjob"
	"github.com/batchenrich/batchenrich/httpenrich"
	"github.com/batchenrich/batchenrich/sqlbatch"
	"github.com/jmoiron/sqlx"
)

// Traveler is one row of traveler_batch_source (package seedjob, shared
// with the fleet and otelenrich examples).
type Traveler = seedjob.Traveler

// Profile is the enrichment of one traveler: seedjob.Transform of the
// profile API's answer.
type Profile = seedjob.Profile

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
func newJob(db *sqlx.DB, cfg config) (*job, error) {
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
		Adaptive:       adaptive(cfg),
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

// options are the Runner's options for cfg.
func (j *job) options(cfg config, events chan<- event) batchenrich.Options {
	return batchenrich.Options{
		BatchSize:   cfg.batchSize,
		MaxBatches:  cfg.maxBatches,
		Concurrency: cfg.concurrency,
		Overlap:     cfg.overlap,
		Durable: &batchenrich.Durable{
			Store:  j.store,
			RunKey: cfg.executionID,
		},
		Tracer: tracerFor(events),
	}
}

// newBulkEnricher returns the Enricher of -bulk n: one POST per group of
// at most n travelers, {"travelers":[{"traveler_id":…,"traveler_name":…},
// …]}, to the embedded API's bulk endpoint (or -profile-url), whose answer
// {"profiles":[…]} is matched to the travelers by traveler_id; each
// traveler's entry is validated as a single answer is, by
// seedjob.Transform.
func newBulkEnricher(hc httpenrich.Config[Traveler, json.RawMessage, Profile], n int) (enricher, error) {
	hc.Method, hc.Request, hc.PathParams = http.MethodPost, nil, nil
	type traveler struct {
		TravelerID   string `json:"traveler_id"`
		TravelerName string `json:"traveler_name"`
	}
	return httpenrich.NewBulk(hc, httpenrich.Bulk[Traveler]{
		MaxItems: n,
		Key:      func(t Traveler) string { return strconv.FormatInt(t.TravelerID, 10) },
		Request: func(ts []Traveler) (httpenrich.Params, error) {
			body := make([]traveler, len(ts))
			for i, t := range ts {
				body[i] = traveler{strconv.FormatInt(t.TravelerID, 10), t.TravelerName}
			}
			return httpenrich.Params{Body: map[string]any{"travelers": body}}, nil
		},
		Entries: httpenrich.JSONEntries("profiles", "traveler_id", "error"),
	})
}
