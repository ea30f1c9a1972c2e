// Package sqlbatch connects batchenrich to SQL databases: a Source reading
// a table or query in windows of a stable key order, a Sink writing each
// batch in one transaction as a bulk upsert, a CheckpointStore that
// makes runs durable and gives one runner at a time each run key, and a
// Lookup enriching items from another table by key; and a Budget sharing
// an upstream's concurrency ceiling and rate among processes.
//
// It supports PostgreSQL (github.com/lib/pq, or pgx through database/sql:
// github.com/jackc/pgx/v5/stdlib) and SQLite (modernc.org/sqlite, pure
// Go, or mattn/go-sqlite3). Everything takes a *sqlx.DB that you open;
// the dialect is told by its driver name ("postgres", "pgx", "sqlite",
// "sqlite3"), e.g. sqlx.NewDb(stdlib.OpenDB(cfg), "pgx"). The package
// registers no driver: import the one you use.
//
// Both PostgreSQL drivers get every feature — the Source, the Sink with
// its COPY fast paths, the CheckpointStore with its advisory lock — and
// pass the same conformance suite. On pgx the Sink COPYs through pgx's own
// connection, so in a transaction of yours (WriteTx) it upserts with
// INSERT statements instead. The cost of pgx support for a program using
// lib/pq only: the module requires github.com/jackc/pgx/v5 (with
// pgpassfile, pgservicefile, puddle and golang.org/x/text in the build
// list), and the pgx packages linked in add about 460 KB to a binary
// (8.89 → 9.35 MB for a program making a Source, Sink and store on
// lib/pq, go1.26 linux/amd64) and 0.08 ms and 6.5 KB of allocations to
// its start-up (GODEBUG=inittrace=1); pgx's stdlib, which registers the
// "pgx" driver, is not linked in.
//
// # Source
//
// NewSource reads rows into your struct through its sqlx `db` tags. By
// default it pages by key — WHERE (k1, k2) > (last1, last2) ORDER BY k1,
// k2 LIMIT n — so the 1000th window costs what the first does; its Cursor
// is the last key read, as a JSON array, and survives a restart.
// PageByOffset pages with OFFSET instead. Filters are bound parameters.
//
// # Sink
//
// NewSink writes every result of a batch in one transaction, in bulk, as
// an upsert on its key: multi-row INSERT … ON CONFLICT (key) DO UPDATE
// statements chunked under the parameter limit; on PostgreSQL, a batch of
// 500 values (rows × columns) or more is instead COPYed into a temporary
// staging table and upserted with one INSERT … SELECT … ON CONFLICT, which
// measured 2–3× faster from 300 rows of ~700-byte JSON payloads on, and
// even around 100. Before either, PostgreSQL first tries the cheapest
// write there is: a COPY straight into the table. A batch written for the
// first time has only new keys, so that COPY succeeds, at the cost of a
// raw COPY (1.0× at 1000 rows, 1.3× at 100, see BenchmarkSink); if a key
// exists, the upsert runs instead, and that Sink goes straight to the
// upsert from then on. In the transaction Write and WriteCheckpointed
// begin, the COPY needs no savepoint: a conflict rolls the transaction
// back and it runs again with the upsert (the RowFunc is not called
// again); in yours (WriteTx) it runs inside a savepoint, which a conflict
// rolls back.
// Writing a batch again leaves the same rows. A
// RowFunc maps each result to a row; failed results go through it too (to
// be stored as invalid rows) or to a FailureTable, and are never dropped.
// NewStructSink instead takes a function returning a struct with `db`
// tags, whose fields are the columns (checked when the Sink is made), so
// columns and values cannot drift apart. A []byte for a text or JSON
// column is stored as text (see SinkConfig).
// The batch number goes into the column you name. JSON wraps Go values for
// json/jsonb columns. WriteTx writes within your own transaction. Any error
// — a constraint, a dropped connection, a cancelled context — rolls the
// whole batch back and names it.
//
// # Lookup
//
// A Lookup is an Enricher that enriches items from another table or query
// by key, one query per group of items (a batchenrich.BulkEnricher: the
// Runner groups each batch by LookupConfig.MaxItems): "WHERE key =
// ANY(CAST(? AS type[]))" on PostgreSQL, the keys bound as one array,
// "WHERE key IN (?, …)" on SQLite. Rows are read into the result type by
// its `db` tags, as a Source reads items, and matched to items by key; a
// key with no row fails its item (or, with ZeroIfMissing, gives the zero
// result). Its names are checked against the catalog before any work.
//
// # Durable runs
//
// Set batchenrich.Options.Durable to a CheckpointStore on the same
// *sqlx.DB as the Sink and each batch commits with its checkpoint in one
// transaction (exactly-once batches; Report.Atomic says so). With a store
// on another database, or another kind of store, the Runner saves the
// checkpoint after the write (at-least-once, absorbed by the Sink's
// upsert). The store is also a batchenrich.Locker: a PostgreSQL session
// advisory lock, or a lease with heartbeat on SQLite; see CheckpointStore.
//
// # Run state
//
// Each checkpoint row also records the run's job and definition, its state
// (running, done, failed, stopped), its counts (batches; items read,
// enriched, failed by class, written), when it started, was updated and
// finished, the host and pid that saved it last, and the error it ended
// with (redacted, at most 1 KiB) — in the statement that saves the
// checkpoint, so no round trip is added per batch, and exact after a crash
// since they commit with the batch. CheckpointStore.Status reads one run
// with its partitions (RunStatus, PartitionStatus), CheckpointStore.Runs
// a filtered list (RunFilter), and CheckpointStore.RequestStop asks a run,
// in every process working on it, to stop at its next batch boundary: the
// same save statement returns the request, the run commits the batch it is
// on, records itself stopped and returns an error wrapping
// batchenrich.ErrStopRequested; running it again resumes it. The command
// github.com/batchenrich/batchenrich/cmd/batchenrich shows and stops runs
// from a shell.
//
// # Creating tables
//
// ExecDDL runs CREATE … IF NOT EXISTS statements in one transaction under
// a PostgreSQL advisory lock (DDLLockKey), so that processes starting at
// once on a fresh database do not fail on each other;
// CheckpointStore.CreateTable uses it. Use it for your own tables too.
//
// # Replays
//
// A batchenrich.Replay retries the items a run stored as failed.
// NewFailedSource reads them back: the run's Source rows whose result row
// (in the Sink's Table) has a failure class in scope; its Check compares
// the configuration with the catalog before the replay's first request. For that the Sink's
// RowFunc stores each failure's class in a nullable column of its own
// (batchenrich.Classify(r.Err).String(), NULL for a success), and
// optionally its attempts (httpenrich.Error.Attempts) in another. A Sink
// writes a replay's batches over the failed rows with its upsert, leaving
// their batch numbers as they were; it refuses them when it stores
// failures in a separate FailureTable.
//
// # Partitions
//
// SourceConfig.Partition makes a Source read one of P key partitions of
// a run split for batchenrich.NewPartitioned or riverenrich. The partition
// of a row is a function of its key alone, so every row is in exactly one
// partition and cursors stay valid across restarts.
//
// On PostgreSQL the partition is a condition of the query,
//
//	(hashtextextended(ROW(k1, k2)::text, 0) & 9223372036854775807) % P = p
//
// so a window reads about P × limit entries of the key's index to return
// limit rows, at the same cost along the table (keyset paging within the
// partition). The hash is PostgreSQL's own (hashtextextended, PostgreSQL
// 11 and later): resume a partitioned run on the server version that
// started it. An expression index on that hash
// makes each partition read only its own rows.
//
// SQLite has no hash function, so there the Source reads rows in key
// order and keeps those whose key, encoded as in the Cursor, hashes with
// 64-bit FNV-1a to p modulo P: each partition scans every row of the
// Filter once over a run. Keep P small on SQLite.
//
// # Shared budgets
//
// NewBudget makes this process a member of a budget for an upstream (a
// concurrency ceiling and a rate for all the processes together), shared
// with every process opening it by the same name on the same PostgreSQL
// database. Each leases its share in a row of the budget table
// (DefaultBudgetTable, created when missing) and renews it in the
// background; httpenrich.Config.Budget enforces it in memory, with no
// round trip per request. With BudgetConfig.Adaptive the processes also
// share httpenrich's adaptive limit: each adapts under its share, the
// sum is reported, and an outage pauses them all but one prober. See
// Budget.
//
// # Names and values
//
// Table and column names are checked (not empty, at most 63 bytes, no
// control or invisible format characters) and always double-quoted, so
// any other name — with spaces, quotes, semicolons or non-ASCII letters —
// is read as exactly that name and never as SQL. Being quoted, names are
// case-sensitive on PostgreSQL: give them as stored (PostgreSQL folds
// unquoted names to lower case when it creates them); SQLite matches names
// whatever their ASCII case, quoted or not. "schema.table" names a table in a
// schema. Values are always bound parameters; a '?' inside a quoted name
// or a literal is never taken for a placeholder.
//
// # Checked before any work
//
// A configuration the database disagrees with fails before the first
// item is enriched, with a *batchenrich.ConfigError naming the field, table and
// column: Source.Check and Sink.Check compare it with the catalog
// (pg_catalog on PostgreSQL, PRAGMA table_info and index_list on
// SQLite), and a batchenrich.Runner calls them before it
// reads anything (a Source also checks before its first read, a Sink
// before its first write, when used without a Runner). They refuse a
// table or column that does not exist — Table, Key, Columns, Filter
// keys, BatchColumn, the failure table — which SQLite would otherwise read
// as a string literal when double-quoted, so that a misspelt Filter
// matches no row; a Sink Key that no primary key or unique index covers
// exactly, with which a rewritten batch would duplicate rows; and, when
// a Source reads every column, a column with no field of the item type or
// a field with no column. For example:
//
//	sqlbatch: invalid SinkConfig.Key: no primary key or unique index of table "results" covers exactly (execution_id, traveler_id), so a rewritten batch would duplicate rows (it has no primary key or unique index); add one: CREATE UNIQUE INDEX ON "results" ("execution_id", "traveler_id")
//	sqlbatch: invalid SourceConfig.Filter["executon_id"]: table "travelers" has no column "executon_id" (it has execution_id, traveler_id, name)
//
// Every configuration mistake of this package, found by a constructor or
// by Check, is a *batchenrich.ConfigError with Package "sqlbatch" and
// Field naming the configuration struct and its field
// ("SinkConfig.Key"); errors.Is(err, batchenrich.ErrInvalidConfig) is
// true for it.
//
// # SQLite
//
// The Runner reads the next window while the Sink writes the current
// batch, on two connections. SQLite allows that only in WAL mode, and a
// writer waiting for another needs a busy timeout rather than an
// immediate SQLITE_BUSY. Open SQLite with both, and with immediate write
// transactions, e.g. with modernc.org/sqlite:
//
//	file:app.db?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_txlock=immediate
//
// A pool capped at one connection (SetMaxOpenConns(1)) cannot do both and
// is refused before any work; with Options.NoPrefetch, reads and writes
// take turns and one connection is enough.
//
// SQLite needs version 3.24 or later (upserts); row-value comparisons need
// 3.15. One statement carries at most 32,766 parameters there, so rows are
// chunked accordingly.
//
// # PostgreSQL
//
// A CheckpointStore holding a run lock keeps one connection out of the
// pool for the run: a run on one *sql.DB holds 3 connections at once (the
// lock's session, the Sink's transaction, and the Source's read-ahead),
// and a run split into P partitions in one process 3P. Before any work,
// the Runner refuses a pool capped below that by SetMaxOpenConns, and a
// server that cannot open the connections the pool lacks
// (max_connections, or the role's or database's CONNECTION LIMIT), with
// one *ConfigError naming the limit and the minimum, e.g.
//
//	sqlbatch: invalid db: SetMaxOpenConns(1) is too small: the run needs 3 connections at once (1 for the Source's read-ahead, 1 for the run lock's session, 1 for a batch's transaction); call SetMaxOpenConns(3) or more
//
// (each component says what it holds: Source.ConnUse, Sink.ConnUse,
// CheckpointStore.ConnUse). The Sink's
// staging table is a temporary table, so its role needs the TEMPORARY
// privilege on the database (granted to PUBLIC by default).
package sqlbatch
