// Package batchenrich runs bounded, ordered, batched enrichment: it reads a
// Source in fixed-size batches, enriches every item of a batch concurrently
// (typically one HTTP call per item), and writes each batch to a Sink with
// its batch number — batch after batch, in strict order, up to a cap.
//
// # Composition
//
// A Runner composes three small interfaces, each with a Func adapter:
//
//   - Source[T] reads the items of one window after a Cursor. Because the
//     next window is asked for with the previous window's Cursor, a Source
//     can page by key instead of OFFSET.
//   - Enricher[T, R] turns one item into one result, or an error. One
//     that is also a BulkEnricher enriches a group of items in one call
//     (a bulk HTTP endpoint, a lookup in another table): the Runner splits
//     each batch into groups of at most its BulkSize, runs at most
//     Options.Concurrency calls at once, and keeps every item's result or
//     error its own.
//   - Sink[T, R] writes one Batch: its number and a Result per item, in
//     Source order.
//
// Package sqlbatch provides a Source, Sink and CheckpointStore for
// PostgreSQL and SQLite; package httpenrich an Enricher making one retried
// HTTP call per item; package batchenrichtest fakes for unit tests.
//
// A Source, Enricher, Sink or CheckpointStore that is also a Checker is checked
// before any work: Run calls Check on each, concurrently (sqlbatch's compare
// their configuration with the database's catalog), and returns the first
// error, in the order Source, Enricher, Sink, CheckpointStore, before it
// takes the run lock or reads anything.
//
// # Guarantees
//
// Batch numbers start at 1. Batch n+1 is enriched only after the Sink has
// returned from writing batch n; the Source may be read one window ahead
// (see Options.NoPrefetch). Within a batch at most Options.Concurrency
// enrichments are in flight, and results reach the Sink in Source order
// whatever order they finish in. With Options.Overlap (off by default),
// batch n+1 is enriched while batch n is still being enriched or written,
// once batch n-1's write has returned, the two batches sharing the
// Concurrency slots (batch n's items first); the writes, with their
// checkpoints, stay one at a time in batch order, batch n+1 is never
// written if batch n stopped the run, and Run returns the error of the
// first batch, in batch order, that stopped it. A run ends after a short
// or empty window, or after Options.MaxBatches batches, so it handles
// min(available, BatchSize × MaxBatches) items.
//
// Run returns only after every goroutine it started has exited. When its
// context ends, no new enrichment starts, in-flight ones see the cancelled
// context, the current batch is not written, and Run returns the context's
// error (wrapped; test it with errors.Is).
//
// # Failures
//
// A failed item is data, not a crash: by default it reaches
// the Sink as a Result whose Err is an *ItemError naming its batch, index
// and key, so the Sink can store it as an invalid row; FailureReason gives
// the bare reason to store in a column (e.g. "status 404 after 1 attempt").
// Options.StopAfterFailures instead stops the run at a batch's Nth failed
// item (1: the first); that batch is not written.
//
// A run that cannot succeed stops instead of storing garbage. A batch of
// at least 5 items in which every item failed (a broken
// endpoint, a wrong URL) stops the run before it is written, with
// ErrAllFailed naming the most common reason; Options.AllowAllFailed turns
// this off. An item error marked Fatal (the program's fault, such as a
// request that cannot be built) stops the run at once, like a panic.
//
// A Source or Sink error stops the run with a *BatchError naming the batch
// and stage; so does a failure to take or release the run's lock
// (StageLock, StageUnlock). A panic in user code becomes a *PanicError
// inside an *ItemError (Enricher) or *BatchError (Source, Sink,
// CheckpointStore, Locker, Tracer). A panic in the handler of
// Options.Logger loses that record, and one in Tracer.TraceLimitChange is
// logged: neither ever escapes Run, with or without Options.Overlap.
// Transient, Permanent and Fatal classify
// errors; Classify reads the class back. See Errors for what their texts
// say.
//
// # Errors
//
// Errors are wrapped with %w, each layer adding its context once, and the
// library never edits the text of an error it did not create: an error of
// your Source, Enricher, Sink, CheckpointStore or Locker reaches you
// verbatim, after the context the Runner adds:
//
//	batchenrich: batch 3: write: <your Sink's error>
//	batchenrich: batch 3 item 7 (key): <your Enricher's error>
//	batchenrich: run "key": lock: <your Locker's error>
//
// FailureReason returns an item's cause as it is too. Which errors carry a
// package prefix ("batchenrich: ", "sqlbatch: ", "httpenrich: ",
// "riverenrich: ", "otelenrich: "):
//
//   - Those a package returns directly to its caller: the errors of
//     constructors (New, sqlbatch.NewSink, httpenrich.New, …), of Check,
//     of CheckResume, of sqlbatch's CreateTable and of riverenrich's
//     EnqueueTx and Migrate, configuration errors, and Run's own
//     (*BatchError, *ItemError).
//   - Not those a component of this module returns to the Runner from a
//     method the Runner calls (Source.Read, Enricher.Enrich, Sink.Write,
//     CheckpointSink.WriteCheckpointed, CheckpointStore.Load and Save,
//     Locker.TryLock and its unlock function): the Runner's error around
//     them says where. sqlbatch's Sink names its table, httpenrich's
//     *Error the request, and a run reads
//     `batchenrich: batch 7: write: traveler_batch_results: pq: …`.
//   - Nor sentinel errors (ErrRunLocked reads "run key is locked by
//     another runner"): they reach you inside an error that says where.
//
// Test errors with errors.Is and errors.As, never by their text.
//
// Configuration mistakes have one type and one sentinel in every package
// and module: a *ConfigError, which errors.Is matches to ErrInvalidConfig
// and errors.As reads for the package, the field and the reason
// ("sqlbatch: invalid SinkConfig.Key: …", "httpenrich: invalid
// Config.URL: …"). They are returned before the first item is enriched.
//
// # Durable runs
//
// With Options.Durable (a Store and a RunKey), the Runner records after
// each batch the batch number and the Source cursor. Run again with the same
// key and it resumes after the last committed batch: committed batches are
// neither read nor enriched again, and numbering continues. When the Sink
// is a CheckpointSink sharing a transaction with the store, a batch and its
// checkpoint commit together, so a crash at any instant leaves both or
// neither; otherwise a crash between the two rewrites one batch
// (at-least-once), which an idempotent Sink absorbs. A resumed run
// enriches again at most the batch that was in flight, or two with
// Options.Overlap (the two enriched, or being enriched or written, and not
// committed). When the store is a Locker, one runner at a time works on a
// key; Durable.LockWait chooses between waiting for it and failing with
// ErrRunLocked.
//
// A checkpoint also records the run's BatchSize and Durable.Fingerprint
// (an optional caller-provided fingerprint of the job's configuration). A
// run resuming a checkpoint recorded with other ones is refused with
// ErrCheckpointMismatch, saying what differs, before anything is read;
// Durable.AllowReshape allows it deliberately. A checkpoint that recorded
// none (an older version's, or a run's without a Fingerprint) matches any
// and records the resumed run's from then on. CheckResume makes the same
// checks without running (for a dry run, or before enqueueing a run's
// partitions, whose count it claims as Run does); pass it
// Runner.Options() to compare the job and definition too.
//
// A run belongs to one job: its checkpoints record Durable.Job and a
// definition derived from the components that describe themselves
// (Describer: sqlbatch's Source and Sink name their tables, keys, filter
// and columns, httpenrich's Enricher its method and URL template, without
// secrets). Resuming or replaying a run key under another Job or with
// another definition is refused with ErrCheckpointMismatch naming what
// differs, before anything is read; AllowReshape never allows it. Run keys
// are checked by New: '#' (with which partition and replay keys are
// derived) and control characters are refused.
//
// A store records, with each checkpoint, the run's state (Checkpoint.State:
// running; done; stopped by the checkpoint of the last batch a MaxBatches
// cap allows; and, saved once when a run ends early, failed or stopped
// with Checkpoint.LastError, redacted) and its counts (RunCounts, summed
// over resumes and exact after a crash, since they commit with the batch).
// A store that is a StopRequester lets an operator stop a run at its next
// batch boundary: Run then returns a *BatchError wrapping ErrStopRequested,
// and a later run resumes it. sqlbatch's CheckpointStore reads the state
// back (Status, Runs) and records stop requests (RequestStop); the command
// cmd/batchenrich shows and stops runs.
//
// # Replays
//
// A Replay re-enriches the items a durable run stored as failed (by
// default only transient failures; sqlbatch's FailedSourceConfig.AllClasses
// for every one) and writes the new results over the failed ones, keeping
// their batch numbers (Batch.Replay tells the Sink it is a replay). It is a durable run of its
// own under the key runKey#replay-n (ReplayReport.ReplayKey), resumable like any run, and holds the
// run's lock while it works, so two replays of a run never work at once,
// and, for a partitioned run, each partition's lock, so a replay of a run
// that is running is refused. A replay of a run key with no recorded run
// is refused (ErrUnknownRun), and so is one of another job or with another
// Enricher or Sink (ErrCheckpointMismatch; the Sink is not compared for a
// partitioned run, whose partitions each had their own). A run with no failure in scope
// is left alone (ReplayReport.NothingToReplay).
//
// # Partitions
//
// A run can be split into P key partitions (Options.Partition), each a
// run of its own: its own checkpoint and lock under Partition.RunKey, strict
// batch order and numbering within the partition, resume after a crash.
// The Sources must split the items (sqlbatch.SourceConfig.Partition does,
// by a hash of the key). The count is recorded with the checkpoints, and
// a run recorded with another count is refused before any read
// (ErrPartitionsChanged). NewPartitioned returns a Runner of all
// partitions of a run, worked on concurrently in one process, with
// Options.Concurrency bounding the enrichments in flight over all of them
// (its Report holds each partition's, and their totals); module
// riverenrich runs them as River jobs over several processes, each job a
// Runner of one partition (Options.Partition).
//
// # Observing a run
//
// Three things, each off by default but the Report: Run returns a Report
// with per-batch and total counts and durations; Options.Logger receives
// log records; and Options.Tracer takes a Tracer, the one way to follow a
// run as it goes, for progress, tracing and metrics. An Enricher that
// adapts its concurrency to an upstream reports each change with
// ReportLimitChange: Report.Limits sums them up per upstream, and they
// reach the Tracer (TraceLimitChange) and the log.
//
// A Tracer is told when the run, each batch and each item start and end,
// with their outcome, around each Source read and Sink write, and of limit
// changes; each start returns the context the next level runs in, so
// spans nest run → batch → item and the Enricher's own calls (an HTTP
// client span) nest under the item. Tracer documents what runs in which
// goroutine; a panicking Tracer stops the run with an error, like any user
// code. No Tracer costs nothing. Module github.com/batchenrich/batchenrich/otelenrich
// implements it with OpenTelemetry; the core never depends on it.
//
// # What an Enricher can read from its context
//
// The context a Run passes to the Enricher carries the run key:
// RunKeyFromContext returns it. Joined with an item's key (Keyer), it names
// one item's work stably across a crash and a resume, e.g. for an
// Idempotency-Key header (httpenrich's Config.IdempotencyKey).
package batchenrich
