package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/batchenrich/batchenrich/examples/travelers/seedjob"
	"github.com/batchenrich/batchenrich/internal/testdb"
	"github.com/batchenrich/batchenrich/sqlbatch"
	"github.com/jmoiron/sqlx"
	"github.com/mccutchen/go-httpbin/v2/httpbin"
)

func TestOutcomeShowsEveryError(t *testing.T) {
	t.Parallel()
	runErr := errors.New("batchenrich: batch 3: write: connection reset")
	valErr := errors.New("validate: connection refused")
	ok := Data{ExpectedRows: 10, StoredRows: 10}
	missing := Data{ExpectedRows: 10, StoredRows: 4, MissingRows: 6}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name   string
		ctx    context.Context
		runErr error
		valErr error
		data   Data
		want   []string
	}{
		{"all well", context.Background(), nil, nil, ok, nil},
		{"run and validation failed", context.Background(), runErr, valErr, Data{}, []string{
			"run failed: batchenrich: batch 3: write: connection reset",
			"final validation failed: validate: connection refused",
			"run again with -execution-id e-1 to resume",
		}},
		{"interrupted", cancelled, runErr, nil, missing, []string{
			"interrupted: batchenrich: batch 3: write: connection reset",
			"validation failed: 6 of 10 expected rows missing",
			"run again with -execution-id e-1 to resume",
		}},
		{"rows missing after a complete run", context.Background(), nil, nil, missing, []string{
			"validation failed: 6 of 10 expected rows missing",
		}},
		{"joined errors stay on one line", context.Background(), errors.Join(runErr, errors.New("unlock: gone")), nil, ok, []string{
			"run failed: batchenrich: batch 3: write: connection reset; unlock: gone",
			"run again with -execution-id e-1 to resume",
		}},
	}
	for _, tt := range tests {
		got := outcome(tt.ctx, "-execution-id e-1", tt.runErr, tt.valErr, nil, tt.data)
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: outcome =\n%q\nwant\n%q", tt.name, got, tt.want)
		}
	}
}

// TestResumeCountsTheWholeRun interrupts a run during batch 3 of 5, plans
// from the checkpoint with -dry-run, and resumes: the progress counts the
// rows of the first invocation, and the interrupted run ends with the hint.
func TestResumeCountsTheWholeRun(t *testing.T) {
	t.Parallel()
	for _, k := range testdb.Kinds {
		t.Run(string(k), func(t *testing.T) {
			t.Parallel()
			_, dsn := dbFor(t, k)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			bin := httpbin.New()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Query().Get("traveler_id") == "250" {
					cancel()
				}
				bin.ServeHTTP(w, r)
			}))
			defer srv.Close()
			args := []string{"-dsn", dsn, "-profile-url", srv.URL + "/anything", "-seed-rows", "500", "-execution-id", "whole-1"}
			code, _, stderr := program(t, ctx, args...)
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if code != exitIncomplete || lines[len(lines)-1] != "travelers: run again with -execution-id whole-1 to resume" {
				t.Fatalf("interrupted: exit %d\n%s", code, stderr)
			}

			code, stdout, stderr := program(t, context.Background(), append(args, "-dry-run")...)
			if code != exitOK || !strings.Contains(stdout, "checkpoint: batches 1..2 committed; a run resumes at batch 3\n  batch 3: traveler_id 201..300\n") ||
				strings.Contains(stdout, "batch 2:") {
				t.Fatalf("dry run: exit %d\n%s%s", code, stdout, stderr)
			}

			code, _, stderr = program(t, context.Background(), args...)
			if code != exitOK || !strings.Contains(stderr, "resuming after batch 2\nbatch 3/5 written  300/500 rows") ||
				!strings.Contains(stderr, "batch 5/5 written  500/500 rows") {
				t.Fatalf("resumed: exit %d\n%s", code, stderr)
			}
		})
	}
}

// TestDryRunReadsOnly plans on an existing SQLite file without creating
// -wal or -shm files or changing the file, even when the directory and the
// file may not be written.
func TestDryRunReadsOnly(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "t.db")
	if code, _, stderr := program(t, context.Background(), "-dsn", path, "-seed-rows", "30", "-batch-size", "10", "-json", "-execution-id", "ro-1"); code != exitOK {
		t.Fatalf("run: exit %d\n%s", code, stderr)
	}
	before := listing(t, dir)
	if err := os.Chmod(path, 0o444); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(dir, 0o755) })
	code, stdout, stderr := program(t, context.Background(), "-dsn", path, "-seed-rows", "30", "-batch-size", "10", "-dry-run", "-execution-id", "ro-1")
	if code != exitOK || !strings.Contains(stdout, "checkpoint: done after batch 3; a run has nothing left to do") {
		t.Fatalf("dry run: exit %d\n%s%s", code, stdout, stderr)
	}
	if after := listing(t, dir); after != before {
		t.Fatalf("dry run changed the directory:\nbefore %s\nafter  %s", before, after)
	}
}

func listing(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s:%d:%s ", e.Name(), info.Size(), info.ModTime())
	}
	return b.String()
}

// TestRefusedTwinNamesTheHolder holds a run's lock as another runner
// would, then starts the same execution id: it must say who holds the run
// and print no summary.
func TestRefusedTwinNamesTheHolder(t *testing.T) {
	t.Parallel()
	for _, k := range testdb.Kinds {
		t.Run(string(k), func(t *testing.T) {
			t.Parallel()
			_, dsn := dbFor(t, k)
			var holder *sqlx.DB
			var err error
			if k == testdb.PostgreSQL {
				holder, err = sqlx.Open("postgres", withAppName(dsn))
			} else {
				holder, err = sqlx.Open("sqlite", sqliteDSN(dsn))
			}
			if err != nil {
				t.Fatal(err)
			}
			defer holder.Close()
			store, err := sqlbatch.NewCheckpointStore(holder, sqlbatch.CheckpointConfig{})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if err := store.CreateTable(ctx); err != nil {
				t.Fatal(err)
			}
			unlock, ok, err := store.TryLock(ctx, "twin-1")
			if err != nil || !ok {
				t.Fatalf("TryLock = %v, %v", ok, err)
			}
			defer unlock()

			code, stdout, stderr := program(t, ctx, "-dsn", dsn, "-seed-rows", "20", "-json", "-execution-id", "twin-1")
			want := "travelers: execution id twin-1 is being run by "
			if k == testdb.PostgreSQL {
				want += fmt.Sprintf("%q (PostgreSQL session ", appName())
			} else {
				want += "a runner that holds its lease until "
			}
			if code != exitIncomplete || stdout != "" || !strings.HasPrefix(stderr, want) || strings.Count(stderr, "\n") != 1 {
				t.Fatalf("exit %d, stdout %q, stderr %q; want one line starting %q", code, stdout, stderr, want)
			}
		})
	}
}

// TestAllFailedStopsResumably points the job at an API that fails every
// call, then at a working one with the same -execution-id: the first run
// stores nothing and exits non-zero with the resume hint; the second
// completes the run.
func TestAllFailedStopsResumably(t *testing.T) {
	t.Parallel()
	for _, k := range testdb.Kinds {
		t.Run(string(k), func(t *testing.T) {
			t.Parallel()
			_, dsn := dbFor(t, k)
			broken := httptest.NewServer(http.NotFoundHandler())
			defer broken.Close()
			args := []string{"-dsn", dsn, "-seed-rows", "100", "-batch-size", "50", "-json", "-execution-id", "down-1"}
			code, stdout, stderr := program(t, context.Background(), append(args, "-profile-url", broken.URL+"/anything")...)
			s := summaryOf(t, stdout)
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if code != exitIncomplete || s.Status != "failed" || s.Data.StoredRows != 0 || s.Data.InvalidRows != 0 ||
				len(lines) != 3 || !strings.HasPrefix(lines[0], "travelers: run failed: batchenrich: batch 1: enrich: all 50 items failed; most common reason (50 of them): status 404") ||
				lines[1] != "travelers: validation failed: 100 of 100 expected rows missing" ||
				lines[2] != "travelers: run again with -execution-id down-1 to resume" {
				t.Fatalf("all failed: exit %d %+v\n%s", code, s.Data, stderr)
			}
			code, stdout, stderr = program(t, context.Background(), args...) // the embedded API
			if s := summaryOf(t, stdout); code != exitOK || s.Data.ValidRows != 100 || s.Execution.BatchesRun != 2 {
				t.Fatalf("resumed: exit %d %+v\n%s", code, s, stderr)
			}
		})
	}
}

// TestDryRunLeavesAnOlderCheckpointTableAlone plans from a checkpoint table
// of an earlier release (without the columns later releases add): the
// dry run reads the checkpoint without upgrading the table.
func TestDryRunLeavesAnOlderCheckpointTableAlone(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "old.db")
	db, err := sqlx.Open("sqlite", sqliteDSN(path))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range append(seedjob.Schema("sqlite"),
		`CREATE TABLE batchenrich_checkpoints (run_key TEXT PRIMARY KEY, batch BIGINT NOT NULL, "cursor" TEXT NOT NULL,
			done BOOLEAN NOT NULL, updated_at TEXT NOT NULL, lock_owner TEXT, lock_expires_at BIGINT)`,
		`INSERT INTO batchenrich_checkpoints VALUES ('old-1', 2, '["200"]', 0, '2026-01-01T00:00:00Z', NULL, NULL)`) {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	before := listing(t, dir)
	code, stdout, stderr := program(t, context.Background(), "-dsn", path, "-seed-rows", "500", "-dry-run", "-execution-id", "old-1")
	if code != exitOK || !strings.Contains(stdout, "a run resumes at batch 3") {
		t.Fatalf("dry run: exit %d\n%s%s", code, stdout, stderr)
	}
	if after := listing(t, dir); after != before {
		t.Fatalf("dry run changed the database:\nbefore %s\nafter  %s", before, after)
	}
}

// TestResumeWithOtherBatchSizeRefused resumes a run with another
// -batch-size: the core refuses to mix batch sizes; the program says so in
// one line, exit 2, without a summary or a resume hint.
func TestResumeWithOtherBatchSizeRefused(t *testing.T) {
	t.Parallel()
	_, dsn := dbFor(t, testdb.SQLite)
	args := []string{"-dsn", dsn, "-seed-rows", "100", "-json", "-execution-id", "shape-1"}
	if code, _, stderr := program(t, context.Background(), append(args, "-batch-size", "20", "-max-batches", "2")...); code != exitOK {
		t.Fatalf("first: exit %d\n%s", code, stderr)
	}
	code, stdout, stderr := program(t, context.Background(), append(args, "-batch-size", "50")...)
	if code != exitUsage || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "checkpoint") || strings.Contains(stderr, "to resume") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	t.Log(stderr)
}

// TestDryRunRefusesLikeTheRun plans a run whose flags do not fit the
// checkpoint's recorded shape (another -batch-size; no -partitions for a
// partitioned run): the dry run refuses it with the real run's exit code
// and line, instead of printing a plan the run would not follow.
func TestDryRunRefusesLikeTheRun(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		first, then []string
	}{
		{"batch-size", []string{"-batch-size", "20", "-max-batches", "2"}, []string{"-batch-size", "50"}},
		{"partitions", []string{"-batch-size", "20", "-partitions", "2"}, []string{"-batch-size", "20"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, dsn := dbFor(t, testdb.SQLite)
			args := []string{"-dsn", dsn, "-seed-rows", "100", "-json", "-execution-id", "shape-" + tc.name}
			if code, _, stderr := program(t, context.Background(), append(args, tc.first...)...); code != exitOK {
				t.Fatalf("first: exit %d\n%s", code, stderr)
			}
			args = append(args, tc.then...)
			dcode, dstdout, dstderr := program(t, context.Background(), append(args, "-dry-run")...)
			code, _, stderr := program(t, context.Background(), args...)
			if code != exitUsage || strings.Count(stderr, "\n") != 1 {
				t.Fatalf("run: exit %d, stderr %q", code, stderr)
			}
			if dcode != code || dstdout != "" || dstderr != stderr {
				t.Fatalf("dry run: exit %d, stdout %q, stderr %q; want exit %d, no stdout, stderr %q", dcode, dstdout, dstderr, code, stderr)
			}
			t.Log(stderr)
		})
	}
}
