// Command batchenrich shows and stops the durable runs that a
// sqlbatch.CheckpointStore records, on PostgreSQL or in a SQLite file,
// from a shell: what CheckpointStore.Runs, Status and RequestStop do in a
// program.
//
//	batchenrich runs   [-dsn DSN] [-table NAME] [-job NAME] [-state STATE] [-limit N] [-json]
//	batchenrich status [-dsn DSN] [-table NAME] [-json] RUNKEY
//	batchenrich stop   [-dsn DSN] [-table NAME] [-json] RUNKEY
//
// From a module that requires github.com/batchenrich/batchenrich (or in
// its repository):
//
//	go run github.com/batchenrich/batchenrich/cmd/batchenrich runs -dsn 'postgres://app@db:5432/app?sslmode=disable'
//
// Flags and RUNKEY may come in any order; after "--" everything is an
// argument (a run key starting with '-').
//
// # Commands
//
// runs lists the most recently updated runs, newest first, one line each:
// the run key, its job (Durable.Job), its state (running, done, failed,
// stopped; "running, not held" when it is recorded as running but no
// process holds the lock of any of its partitions: its processes died, or
// a queue is about to hand it to another worker), for a partitioned run
// how many partitions are done, each partition's last committed batch, the
// items read and written, the failed items by class (T transient,
// P permanent, U unclassified), the rate, an ETA, when it was last
// updated and its last error. -job and -state select runs; -limit caps
// how many are listed (default 20, at most 1000). A replay is a run of its
// own (key RUNKEY#replay-n).
//
// status RUNKEY shows one run in detail, then a line per partition with
// its state, whether a stop request is pending, last batch, counts, rate,
// times, the host and pid of the process that saved its last checkpoint,
// and its last error in full. RUNKEY may also be a partition's own key
// (RUNKEY#p3) or a replay's.
//
// stop RUNKEY asks the run to stop at its next batch boundary
// (CheckpointStore.RequestStop): each partition recorded as running gets a
// stop request; a runner holding it finishes and commits the batch it is
// on, then stops, and one that no process holds (interrupted) stops when
// a runner next starts it, before any batch. Each is recorded as stopped,
// and running the run again with the same key resumes it. It says how
// many partitions were asked; a run with none running is left as it is
// (exit 0). It does not wait for the runners to stop: status shows when
// they have.
//
// The rate is the items read per second, averaged from the run's first
// start to its last checkpoint (time between attempts included). The ETA
// is shown only for a running partitioned run of which at least one
// partition is done: it assumes each unfinished partition has as many
// items as the finished ones read on average ("-" otherwise).
//
// # Flags
//
// -dsn is the database holding the checkpoint table: a postgres:// or
// postgresql:// URL or a libpq keyword string (host=… dbname=…) for
// PostgreSQL, or an existing SQLite file (a path, or a file: URI), which
// is opened for reading and writing and never created. Without -dsn, the
// value of $DATABASE_URL is used. -table is the checkpoint table
// (sqlbatch.CheckpointConfig.Table; default batchenrich_checkpoints). As
// any use of a CheckpointStore, the first read adds the columns a table
// made by an older version lacks.
// -json prints one JSON object on stdout instead of text.
//
// # Output
//
// Nothing printed shows a secret: the database is described with its
// password masked (package redact), and every error and stored text goes
// through redact.Text. In text output, control and format characters
// (line breaks, ANSI escapes, bidirectional marks) in run keys, job
// names, hosts and errors are printed as Go escapes (\n, \x1b, \u202e).
//
// With -json, runs prints {"runs": [RUN, …]}, status prints RUN, and stop
// prints {"run_key", "state" (before the request), "requested" (the
// partitions asked to stop), "held" (of those, the ones a runner held)}.
// RUN is an object with run_key, job, state, partition_count,
// partitions_done, counts, rate_per_second (null when unknown),
// eta_seconds (null when unknown), started, updated, finished (RFC 3339
// times, null when not yet), last_error and partitions, a list of objects
// with index, run_key, state ("" before the partition saved anything),
// batch, done, counts, rate_per_second, started, updated, finished, host,
// pid, held, stop_requested and last_error. counts is an object with
// batches, read, enriched, failed, failed_transient, failed_permanent and
// written (batchenrich.RunCounts). These names are stable: fields may be
// added, never renamed or removed.
//
// # Exit status
//
// 0 when the command did what it was asked; 2 for bad input, with one line
// on stderr: an unknown command, a bad or missing flag or RUNKEY, a -dsn
// that is not a database, a database that cannot be reached within 5 s, a
// missing checkpoint table, a run key with nothing recorded; 1 when the
// database failed a query after it was reached.
package main
