// Package riverenrich runs the key partitions of batchenrich runs as River
// jobs (github.com/riverqueue/river, over database/sql and lib/pq with
// riverdatabasesql), so that any number of worker processes on the same
// PostgreSQL database share the work of a run. It is a module of its own:
// users of batchenrich's core never download River.
//
// # Model
//
// A Client serves one job (Config.Job): the name of what defines a run's
// results — its Source, Enricher and Sink — with, optionally, a
// Fingerprint of that definition's version. A run of the job split into P
// partitions (batchenrich.Options.Partition) is P River jobs of kind
// Kind, one per partition, in the job's own River queue (QueuePrefix +
// Job), carrying the job's name and Fingerprint (PartitionArgs), unique
// by run key and partition whatever their job: enqueueing a run twice
// (Client.Enqueue, or Client.EnqueueTx inside the caller's transaction)
// inserts its jobs once, as long as River keeps them (see EnqueueTx: a
// cancelled or discarded job, or a completed one past River's retention,
// is inserted again, and resumes its partition from its checkpoint).
//
// A run key belongs to one job and one definition. Enqueueing first
// checks the partition count recorded for the run
// (batchenrich.CheckResume claims it) and refuses another one with
// batchenrich.ErrPartitionsChanged; it refuses a run whose jobs exist
// with another job, Fingerprint or params, and (for a Client with
// Options) one whose checkpoints were recorded with other settings, with
// an error wrapping batchenrich.ErrCheckpointMismatch saying what differs
// in the core's words ("BatchSize 20 (this run: 50)"), instead of
// reporting duplicates that would run the first enqueue's settings.
//
// A worker works only on its own job: it fetches from its job's queue
// only, and cancels, without running it, a partition job of another job
// or Fingerprint that reaches it (inserted by hand). A run enqueued for a
// job no worker serves waits in the queue; Client.Wait reports it after
// WaitOptions.NoWorker (ErrNoWorker).
//
// A job runs its partition's batchenrich.Runner, holding the partition's
// run lock, with the guarantees of a Runner: strict batch order and
// numbering within the partition, each batch committed with its
// checkpoint. Concurrency bounds the enrichments in flight over every
// partition a process works on.
//
// # Errors reach the waiter
//
// A partition that fails with an error another attempt would meet again
// is ended at once — cancelled in River (river.JobCancel), not retried —
// with its error recorded in the job: a configuration its Source,
// Enricher, Sink or CheckpointStore refused (a Checker's error,
// batchenrich.ErrInvalidConfig), a checkpoint recorded with another
// partition count or other settings, a batch stopped by the failure
// policy (batchenrich.ErrTooManyFailures) or because every item failed
// (batchenrich.ErrAllFailed: an API that is down, a wrong URL), and a
// batchenrich.Fatal error. Client.Wait returns at its next look with that
// error, naming the partition; fix the cause and enqueue the run again to
// resume it from its checkpoint. A partition stopped at an operator's
// request (batchenrich.ErrStopRequested) is cancelled too, recorded as
// stopped; enqueueing the run again resumes it. Other errors (a database that cannot be
// reached, a Source read that failed) are retried, attempt n after n
// seconds (at most RetryMax), up to River's MaxAttempts. The errors River
// records have the credentials of any URL in them masked. While it
// waits, Client.Status (and WaitOptions.Progress) shows each partition's
// job state, attempt, last committed batch and last error; an interrupted
// Wait's error lists the unfinished partitions' last errors.
//
// # Slices
//
// A job works for Config.Slice (DefaultSlice, one minute), then stops at
// the next batch boundary — nothing is re-enriched — and snoozes itself
// for zero seconds (river.JobSnooze(0)): any worker, possibly another
// process, continues it. Slices keep each River attempt within its
// timeout (Slice + SliceGrace), so River's own rescuer never mistakes a
// live job for a stuck one, and let workers that join later take a share.
// The price: at each slice end the partition idles until a worker fetches
// the job again, up to River's FetchPollInterval (1 s by default, as
// database/sql has no LISTEN), about 2 % of a one-minute slice.
//
// # Stopping
//
// Client.Stop stops softly: every partition the process works on ends its
// slice at the next batch boundary — it finishes and commits the batch it
// is on (and a window it had read ahead) — and goes back to the queue
// (river.JobSnooze(0): no attempt spent) for any worker, its run lock
// released; nothing committed is enriched again. That takes as long as
// the slowest batch in flight. When Stop's context ends first, the jobs
// are cancelled at once (River's StopAndCancel): their batches in flight
// are not written, and whoever continues enriches them again. The end of
// Start's context stops nothing (River would stop hard): a program
// stopping on a signal calls Stop, with a context a second signal or a
// deadline cancels (the fleet example: 30 s).
//
// # Takeover
//
// River OSS has no heartbeats: a job whose worker was SIGKILLed or lost
// stays "running" until River's rescuer frees it after
// RescueStuckJobsAfter (one hour by default; the rescuer runs every 30 s
// on the leader, which cannot be made faster from outside). So a working
// Client runs a takeover loop of its own, every TakeoverInterval
// (DefaultTakeoverInterval, 5 s): a partition job still "running" while
// nobody holds its partition's run lock — a PostgreSQL session advisory
// lock, freed by the server the moment its process dies — seen so twice
// in a row, one interval apart, in the same execution (same attempt and
// same start: River gives a snoozed job its attempt number back, so a
// live job seen between two of its slices is not mistaken for a lost
// one), is put back as available with its attempt given back, as River
// does for a snooze: a takeover never spends one of the job's
// MaxAttempts, however many a long run goes through (its errors and its
// metadata "batchenrich:takeovers" record each). River has
// no API to free a running job (JobRetry leaves running jobs alone), so
// this is an UPDATE of River's river_job table, guarded by the job's
// state and attempt: it follows River v0.51.2's schema. The next
// fetch resumes the partition after its last committed batch: the batch
// in flight when the worker died is enriched again, nothing else. A dead
// worker's partitions are thus taken over within about
// 2 × TakeoverInterval plus the fetch poll interval after its death, about
// 11 s by default (9 s measured: BENCHMARKS.md), as long as another worker
// runs and the database answers.
//
// Trade-offs: a shorter TakeoverInterval takes over sooner and costs one
// River job listing plus one lock probe per running job per interval. A
// machine that vanishes without closing its connections (power loss,
// network partition) keeps its advisory locks until PostgreSQL notices
// the dead session: set the server's tcp_keepalives_idle,
// tcp_keepalives_interval and tcp_keepalives_count to bound that too. The
// run lock is what keeps a slow-but-alive worker and the one that took
// over off the same partition at once: the slow one's next checkpoint
// save fails (sqlbatch.ErrLockLost) and it stops, snoozing its job
// (river.JobSnooze: no attempt spent) rather than failing it.
//
// # Schema
//
// Migrate applies River's migrations (rivermigrate) and is safe to call
// from several processes starting at once; call it before New.
package riverenrich
