package contenders

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/bench/internal/harness"
	"github.com/batchenrich/batchenrich/bench/internal/job"
	"github.com/batchenrich/batchenrich/httpenrich"
	"github.com/batchenrich/batchenrich/sqlbatch"
	"github.com/jmoiron/sqlx"
)

// libTraveler is a source row as sqlbatch.Source reads it.
type libTraveler struct {
	ID   int64  `db:"traveler_id"`
	Name string `db:"traveler_name"`
}

// libColumns are the result columns the Sink fills, batch_number aside.
var libColumns = []string{
	"execution_id", "traveler_id", "traveler_name", "normalized_name", "profile_status",
	"profile_hash", "profile_payload", "is_valid", "validation_error",
}

// Library is batchenrich itself, as a user would write the job with it: the
// Runner with a keyset sqlbatch.Source, an httpenrich.Enricher (pool sized
// to the concurrency, default retries) and a sqlbatch.Sink upserting each
// batch in one transaction together with its checkpoint
// (sqlbatch.CheckpointStore, run key = execution id). Batches are strictly
// ordered; the next window is prefetched. Its progress events go to a
// buffered channel, read after the run for the time to the first batch.
func Library(ctx context.Context, cfg harness.Config) (harness.Stats, error) {
	return library(ctx, cfg, variant{})
}

// LibraryOverlapped is Library with Options.Overlap: batch n+1 is enriched
// while batch n is still enriched or written, writes and checkpoints still
// in batch order.
func LibraryOverlapped(ctx context.Context, cfg harness.Config) (harness.Stats, error) {
	return library(ctx, cfg, variant{overlap: true})
}

// LibraryOTel is Library with otelenrich's Tracer on an OpenTelemetry SDK
// (see otel.go): spans and metrics of the run, its batches, its items and
// each HTTP attempt (Tracer.Transport's client span).
func LibraryOTel(ctx context.Context, cfg harness.Config) (harness.Stats, error) {
	return library(ctx, cfg, variant{otel: true, otelHTTP: attemptSpansLean})
}

// LibraryOTelNoHTTP is LibraryOTel without the Tracer's HTTP transport:
// the run, batch, item, read and write spans and the metrics, but no span
// per HTTP attempt. The difference from LibraryOTel is the attempt spans'
// cost.
func LibraryOTelNoHTTP(ctx context.Context, cfg harness.Config) (harness.Stats, error) {
	return library(ctx, cfg, variant{otel: true})
}

// LibraryOTelHTTP is LibraryOTel with Tracer.OTelHTTPTransport instead of
// Tracer.Transport: otelhttp's client span per HTTP attempt and its client
// metrics. The difference from LibraryOTel is what otelhttp costs more.
func LibraryOTelHTTP(ctx context.Context, cfg harness.Config) (harness.Stats, error) {
	return library(ctx, cfg, variant{otel: true, otelHTTP: attemptSpansOTelHTTP})
}

// LibraryOTelFloor is a measure of the SDK, not of otelenrich: the least
// that one span per item and one client span per HTTP attempt cost on the
// same SDK (see floorTracer), the floor under LibraryOTel.
func LibraryOTelFloor(ctx context.Context, cfg harness.Config) (harness.Stats, error) {
	return library(ctx, cfg, variant{otel: true, otelHTTP: attemptSpansFloor})
}

// variant selects a way of running the library.
type variant struct {
	overlap  bool         // Options.Overlap
	otel     bool         // otelenrich's Tracer, on the SDK
	otelHTTP attemptSpans // and a client span per HTTP attempt, from which transport
	bulk     bool         // httpenrich.NewBulk against the API's /bulk endpoint
}

func library(ctx context.Context, cfg harness.Config, v variant) (harness.Stats, error) {
	overlap := v.overlap
	var st harness.Stats
	called := time.Now()
	var tel *telemetry
	if v.otel {
		var err error
		if tel, err = startTelemetry(); err != nil {
			return st, err
		}
		defer tel.shutdown()
	}
	db, err := sqlx.Open("postgres", cfg.DatabaseURL)
	if err != nil {
		return st, err
	}
	defer db.Close()
	db.SetMaxOpenConns(4) // run lock, sink transaction, prefetch, spare
	db.SetMaxIdleConns(4)

	src, err := libSource(db, cfg, batchenrich.Partition{})
	if err != nil {
		return st, err
	}

	ecfg := libEnricherConfig(cfg, cfg.Concurrency)
	if v.otelHTTP != noAttemptSpans {
		closeIdle, err := tel.instrument(&ecfg, v.otelHTTP)
		if err != nil {
			return st, err
		}
		defer closeIdle()
	}
	var enr interface {
		batchenrich.Enricher[libTraveler, job.Row]
		Close() error
	}
	if v.bulk {
		enr, err = libBulkEnricher(cfg)
	} else {
		enr, err = httpenrich.New(ecfg)
	}
	if err != nil {
		return st, err
	}
	defer enr.Close()

	sink, err := sqlbatch.NewSink(db, sqlbatch.SinkConfig[libTraveler, job.Row]{
		Table:       "traveler_batch_results",
		Key:         []string{"execution_id", "traveler_id"},
		Columns:     libColumns,
		BatchColumn: "batch_number",
		Row: func(r batchenrich.Result[libTraveler, job.Row]) ([]any, error) {
			row := r.Value
			if r.Err != nil { // stored as an invalid row, never dropped
				row = libFailedRow(r.Item, r.Err)
			}
			var verr any
			if row.ValidationError != "" {
				verr = row.ValidationError
			}
			return []any{cfg.ExecutionID, row.TravelerID, row.TravelerName, row.NormalizedName, row.ProfileStatus,
				row.ProfileHash, string(row.ProfilePayload), row.IsValid, verr}, nil
		},
	})
	if err != nil {
		return st, err
	}

	store, err := sqlbatch.NewCheckpointStore(db, sqlbatch.CheckpointConfig{})
	if err != nil {
		return st, err
	}
	if err := store.CreateTable(ctx); err != nil {
		return st, err
	}

	// When the first batch started, from the Runner's log record.
	first := &firstBatchLog{}
	r, err := batchenrich.New(src, enr, sink, batchenrich.Options{
		Logger:      slog.New(first),
		BatchSize:   cfg.BatchSize,
		MaxBatches:  cfg.MaxBatches,
		Concurrency: cfg.Concurrency,
		Overlap:     overlap,
		Durable: &batchenrich.Durable{
			Store:  store,
			RunKey: cfg.ExecutionID,
		},
		Tracer: tel.tracer(v.otelHTTP),
	})
	if err != nil {
		return st, err
	}
	rep, err := r.Run(ctx)
	st.Written, st.Batches, st.Phase = rep.Written, rep.BatchesRun, rep.Duration
	var read, enrich, write time.Duration
	for _, b := range rep.Batches {
		read, enrich, write = read+b.ReadDuration, enrich+b.EnrichDuration, write+b.WriteDuration
	}
	firstBatch := rep.Started // no batch: 0 ms
	if at := first.at.Load(); at != nil {
		firstBatch = *at
	}
	st.Detail = fmt.Sprintf("Run %.1f ms: enrich %.1f, write %.1f, read %.1f (sums over batches; reads mostly prefetched%s); before Run %.1f ms, Run to the first batch %.1f ms",
		ms(rep.Duration), ms(enrich), ms(write), ms(read), map[bool]string{true: "; writes overlap the next enrichment"}[overlap],
		ms(rep.Started.Sub(called)), ms(firstBatch.Sub(rep.Started)))
	if tel != nil {
		if terr := tel.shutdown(); terr != nil && err == nil {
			err = terr
		}
		st.Detail += "; " + tel.summary()
	}
	if err != nil {
		return st, fmt.Errorf("batchenrich: %w", err)
	}
	return st, nil
}

// libFailedRow is the invalid row stored for an item whose request failed.
func libFailedRow(t libTraveler, err error) job.Row {
	row := job.FromEcho(job.Traveler(t), 0, 0, nil, nil)
	var he *httpenrich.Error
	reason := err.Error()
	if errors.As(err, &he) {
		row.ProfileStatus, reason = he.Status, string(he.Reason)
	}
	row.IsValid, row.ValidationError = false, reason
	row.ProfilePayload, _ = json.Marshal(map[string]any{"error": err.Error()})
	return row
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// firstBatchLog is a slog.Handler noting when a run's first batch started
// (the Runner's "batchenrich: batch started" record, at Debug); it turns
// every other record away once it has it.
type firstBatchLog struct{ at atomic.Pointer[time.Time] }

func (h *firstBatchLog) Enabled(_ context.Context, l slog.Level) bool {
	return l == slog.LevelDebug && h.at.Load() == nil
}

func (h *firstBatchLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "batchenrich: batch started" {
		t := r.Time
		h.at.CompareAndSwap(nil, &t)
	}
	return nil
}

func (h *firstBatchLog) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *firstBatchLog) WithGroup(string) slog.Handler      { return h }
