package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/examples/travelers/seedjob"
	"github.com/batchenrich/batchenrich/httpenrich"
	"github.com/batchenrich/batchenrich/otelenrich"
	"github.com/batchenrich/batchenrich/sqlbatch"
	"github.com/hashicorp/go-retryablehttp"
	"github.com/jmoiron/sqlx"
	"github.com/mccutchen/go-httpbin/v2/httpbin"
	_ "modernc.org/sqlite" // the database/sql driver "sqlite"
)

// Traveler is one row of traveler_batch_source (package seedjob, shared
// with examples/travelers). Its Key names it in errors and, with
// otelenrich.Config.ItemKeys, on its span.
type Traveler = seedjob.Traveler

// Profile is the enrichment of one traveler: the API's echo, checked.
type Profile struct {
	Status  int
	Payload json.RawMessage
}

var schema = []string{
	seedjob.SourceDDL,
	`CREATE TABLE IF NOT EXISTS traveler_batch_results (
		execution_id TEXT NOT NULL,
		traveler_id INTEGER NOT NULL,
		profile_status INTEGER NOT NULL,
		profile_payload TEXT NOT NULL,
		is_valid INTEGER NOT NULL,
		validation_error TEXT,
		batch_number INTEGER NOT NULL,
		PRIMARY KEY (execution_id, traveler_id))`,
}

// prepare creates the tables and seeds travelers 1..rows for the
// execution, idempotently.
func prepare(ctx context.Context, db *sqlx.DB, execID string, rows int) error {
	for _, ddl := range schema {
		if _, err := db.ExecContext(ctx, ddl); err != nil {
			return fmt.Errorf("create tables: %w", err)
		}
	}
	return seedjob.Seed(ctx, db, execID, rows)
}

// openDB opens the SQLite database file path.
func openDB(path string) (*sqlx.DB, error) {
	db, err := sqlx.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	return db, nil
}

// newSource reads the travelers of execID by traveler_id.
func newSource(db *sqlx.DB, execID string) (*sqlbatch.Source[Traveler], error) {
	return sqlbatch.NewSource[Traveler](db, sqlbatch.SourceConfig{
		Table:   "traveler_batch_source",
		Columns: []string{"execution_id", "traveler_id", "traveler_name"},
		Key:     []string{"traveler_id"},
		Filter:  map[string]any{"execution_id": execID},
	})
}

// newSink writes results to traveler_batch_results, one row per
// (execution_id, traveler_id), with resultRow.
func newSink(db *sqlx.DB) (*sqlbatch.Sink[Traveler, Profile], error) {
	return sqlbatch.NewSink(db, sqlbatch.SinkConfig[Traveler, Profile]{
		Table:       "traveler_batch_results",
		Key:         []string{"execution_id", "traveler_id"},
		Columns:     []string{"execution_id", "traveler_id", "profile_status", "profile_payload", "is_valid", "validation_error"},
		Row:         resultRow,
		BatchColumn: "batch_number",
	})
}

// resultRow stores a profile, or a failed enrichment as an invalid row.
func resultRow(r batchenrich.Result[Traveler, Profile]) ([]any, error) {
	t := r.Item
	if r.Err != nil {
		return []any{t.ExecutionID, t.TravelerID, 0, "{}", false, batchenrich.FailureReason(r.Err)}, nil
	}
	return []any{t.ExecutionID, t.TravelerID, r.Value.Status, string(r.Value.Payload), true, nil}, nil
}

// validate checks that the API echoed the traveler's id (an httpbin
// /anything answer, whose args hold strings on httpbin.org and lists of
// strings on go-httpbin) with seedjob.ValidateEcho, the check the other
// seed job examples make; a wrong echo fails the item with its verdict.
func validate(t Traveler, resp *httpenrich.Response[json.RawMessage]) (Profile, error) {
	if verdict := seedjob.ValidateEcho(resp.Body, t.TravelerID); verdict != "" {
		return Profile{}, errors.New(verdict)
	}
	return Profile{Status: resp.Status, Payload: resp.Body}, nil
}

// run is the program: telemetry, database, API, the Runner with the
// otelenrich Tracer, a summary on stderr.
func run(ctx context.Context, cfg config, stdout, stderr io.Writer) (err error) {
	tel, err := startTelemetry(cfg, stdout)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, tel.shutdown(ctx)) }()
	if tel.addr != "" {
		fmt.Fprintf(stderr, "metrics: http://%s/metrics\n", tel.addr)
		if cfg.served != nil {
			cfg.served <- tel.addr
		}
	}
	tracer, err := otelenrich.New(otelenrich.Config{
		TracerProvider: tel.tp, MeterProvider: tel.mp, Propagators: tel.propagators, ItemKeys: true,
	})
	if err != nil {
		return err
	}
	defer tracer.Close()

	db, err := openDB(cfg.db)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := prepare(ctx, db, cfg.executionID, cfg.rows); err != nil {
		return err
	}

	profileURL := cfg.profileURL
	if profileURL == "" {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("in-process httpbin: %w", err)
		}
		api := &http.Server{Handler: httpbin.New(), ReadHeaderTimeout: 10 * time.Second}
		done := make(chan struct{})
		go func() { defer close(done); _ = api.Serve(ln) }()
		defer func() { _ = api.Close(); <-done }()
		profileURL = "http://" + ln.Addr().String() + "/anything/profile"
	}

	pool := httpenrich.Pool{}.ForConcurrency(cfg.concurrency)
	base, err := httpenrich.NewTransport(pool)
	if err != nil {
		return err
	}
	defer base.CloseIdleConnections()
	enr, err := httpenrich.New(httpenrich.Config[Traveler, json.RawMessage, Profile]{
		URL: profileURL,
		Request: func(t Traveler) (httpenrich.Params, error) {
			return httpenrich.Params{Query: url.Values{
				"traveler_id":   {strconv.FormatInt(t.TravelerID, 10)},
				"traveler_name": {t.TravelerName},
			}}, nil
		},
		Validate: validate,
		// The Tracer's transport makes a client span of every attempt,
		// under its item's span. With a Client, MaxAttempts is the
		// Client's RetryMax+1 unless set: set it.
		Client:      &retryablehttp.Client{HTTPClient: &http.Client{Transport: tracer.Transport(base)}},
		MaxAttempts: httpenrich.DefaultMaxAttempts,
	})
	if err != nil {
		return err
	}
	defer enr.Close()

	src, err := newSource(db, cfg.executionID)
	if err != nil {
		return err
	}
	sink, err := newSink(db)
	if err != nil {
		return err
	}
	store, err := sqlbatch.NewCheckpointStore(db, sqlbatch.CheckpointConfig{})
	if err != nil {
		return err
	}
	if err := store.CreateTable(ctx); err != nil {
		return err
	}
	runner, err := batchenrich.New(src, enr, sink, batchenrich.Options{
		BatchSize:   cfg.batchSize,
		MaxBatches:  cfg.maxBatches,
		Concurrency: cfg.concurrency,
		Durable: &batchenrich.Durable{
			Store:  store,
			RunKey: cfg.executionID,
		},
		Tracer: tracer,
	})
	if err != nil {
		return err
	}
	rep, err := runner.Run(ctx)
	fmt.Fprintf(stderr, "run %s: %d batches, %d items written, %d failed, in %v\n",
		cfg.executionID, rep.BatchesRun, rep.Written, rep.Failed, rep.Duration.Round(time.Millisecond))
	if cfg.finished != nil {
		close(cfg.finished)
	}
	if err != nil {
		return err
	}
	if cfg.linger > 0 {
		fmt.Fprintf(stderr, "serving metrics for %v more\n", cfg.linger)
		t := time.NewTimer(cfg.linger)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
	}
	return nil
}
