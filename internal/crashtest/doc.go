// Package crashtest holds the crash and concurrency tests of durable runs
// (issue 6): a job on sqlbatch (Source, Sink and CheckpointStore on one
// database) and httpenrich runs in child processes that the tests kill with
// SIGKILL at chosen points, start side by side on one run key, or cancel,
// on PostgreSQL and on SQLite. Everything is in the _test.go files; this
// package has no API.
//
// # How the tests work
//
// The test binary re-runs itself as a child (TestHelperProcess, selected
// by -test.run and configured by the CRASHTEST_CHILD environment
// variable). The child runs one durable job and
//
//   - appends "batch item" to an enrichment log for every enrichment it
//     starts (one O_APPEND write per line), so the parent can count
//     enrichments across crashes;
//   - prints its phases on stdout ("enriching 3", "writing 3",
//     "written 3", "paused write 3") and, at the end, "report {json}";
//   - can pause at one point (during the enrichment of batch k, inside the
//     write transaction of batch k after its rows and checkpoint were
//     written but before the commit, or after batch k committed), where
//     the parent kills it or tells it to go on (a "go" line on stdin).
//
// The results table is keyed by (id, writer), writer being a token of the
// process that wrote the row: a batch committed twice, by two processes,
// shows as duplicate ids instead of being absorbed by an upsert.
//
// PostgreSQL runs need BATCHENRICH_TEST_DATABASE_URL (see internal/testdb).
package crashtest
