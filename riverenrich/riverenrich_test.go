package riverenrich_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"go.uber.org/goleak"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/riverenrich"
	"github.com/batchenrich/batchenrich/riverenrich/internal/testdb"
	"github.com/batchenrich/batchenrich/sqlbatch"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

type row struct {
	ID int64 `db:"id"`
}

// fixture is a database with a source of n rows, a results table, River's
// schema and the checkpoint table.
type fixture struct {
	db    *sqlx.DB
	store *sqlbatch.CheckpointStore
	calls atomic.Int64
}

func newFixture(t *testing.T, n int) *fixture {
	t.Helper()
	ctx := context.Background()
	db := testdb.Postgres(t)
	db.SetMaxOpenConns(12) // the machine's PostgreSQL is shared: keep to what the tests need
	if err := riverenrich.Migrate(ctx, db.DB, ""); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`CREATE TABLE src (id BIGINT PRIMARY KEY)`,
		`CREATE TABLE res (id BIGINT PRIMARY KEY, batch_number INTEGER NOT NULL, part INTEGER NOT NULL)`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(`INSERT INTO src SELECT generate_series(1, $1::int)`, n); err != nil {
		t.Fatal(err)
	}
	store, err := sqlbatch.NewCheckpointStore(db, sqlbatch.CheckpointConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.CreateTable(ctx); err != nil {
		t.Fatal(err)
	}
	return &fixture{db: db, store: store}
}

func (f *fixture) config(t *testing.T) riverenrich.Config[row, int64] {
	return riverenrich.Config[row, int64]{
		Job:   "test",
		DB:    f.db.DB,
		Store: f.store,
		Source: func(ctx context.Context, job riverenrich.Job) (batchenrich.Source[row], error) {
			return sqlbatch.NewSource[row](f.db, sqlbatch.SourceConfig{Table: "src", Key: []string{"id"}, Partition: job.Partition})
		},
		Enricher: batchenrich.EnricherFunc[row, int64](func(ctx context.Context, r row) (int64, error) {
			f.calls.Add(1)
			time.Sleep(time.Millisecond)
			return r.ID * 2, nil
		}),
		Sink: func(ctx context.Context, job riverenrich.Job) (batchenrich.Sink[row, int64], error) {
			return sqlbatch.NewSink(f.db, sqlbatch.SinkConfig[row, int64]{
				Table: "res", Key: []string{"id"}, Columns: []string{"id", "part"}, BatchColumn: "batch_number",
				Row: func(r batchenrich.Result[row, int64]) ([]any, error) {
					return []any{r.Item.ID, job.Partition.Index}, nil
				},
			})
		},
		Options: func(job riverenrich.Job) (batchenrich.Options, error) {
			return batchenrich.Options{BatchSize: 10, Concurrency: 4}, nil
		},
		Concurrency:       8,
		FetchPollInterval: 50 * time.Millisecond,
		TakeoverInterval:  300 * time.Millisecond,
	}
}

func (f *fixture) start(t *testing.T, cfg riverenrich.Config[row, int64]) *riverenrich.Client[row, int64] {
	t.Helper()
	c, err := riverenrich.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.Stop(ctx); err != nil {
			t.Error(err)
		}
	})
	return c
}

// enqueuer returns a Client that only enqueues (no Source).
func (f *fixture) enqueuer(t *testing.T) *riverenrich.Client[row, int64] {
	t.Helper()
	c, err := riverenrich.New(riverenrich.Config[row, int64]{Job: "test", DB: f.db.DB, Store: f.store})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// check asserts every source row is stored once, and that batch numbers
// count within each partition.
func (f *fixture) check(t *testing.T, n, parts, batchSize int) {
	t.Helper()
	var got struct {
		Rows     int `db:"rows"`
		Distinct int `db:"parts"`
		MaxBatch int `db:"max_batch"`
	}
	if err := f.db.Get(&got, `SELECT count(*) AS rows, count(DISTINCT part) AS parts, max(batch_number) AS max_batch FROM res`); err != nil {
		t.Fatal(err)
	}
	var missing int
	if err := f.db.Get(&missing, `SELECT count(*) FROM src WHERE id NOT IN (SELECT id FROM res)`); err != nil {
		t.Fatal(err)
	}
	if got.Rows != n || missing != 0 || got.Distinct != parts {
		t.Fatalf("stored %d rows (%d missing) over %d partitions; want %d rows over %d", got.Rows, missing, got.Distinct, n, parts)
	}
	if limit := (n/parts)*2/batchSize + 1; got.MaxBatch > limit {
		t.Errorf("max batch number %d > %d: numbering is not per partition", got.MaxBatch, limit)
	}
}

func TestRunOverTwoWorkers(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 400)
	cfg := f.config(t)
	a := f.start(t, cfg)
	f.start(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e, err := a.Enqueue(ctx, "run-1", 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(e.JobIDs) != 4 || e.Duplicates != 0 {
		t.Fatalf("enqueued %+v", e)
	}
	if err := a.Wait(ctx, e, riverenrich.WaitOptions{Interval: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	f.check(t, 400, 4, 10)
	if got := f.calls.Load(); got != 400 {
		t.Errorf("%d enrichments for 400 rows", got)
	}
}

func TestEnqueueTwiceRunsOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 200)
	cfg := f.config(t)
	// An enqueue-only client inserts, a working one works.
	ins := f.enqueuer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	first, err := ins.Enqueue(ctx, "run-2", 3, map[string]int{"max_batches": 0})
	if err != nil {
		t.Fatal(err)
	}
	second, err := ins.Enqueue(ctx, "run-2", 3, map[string]int{"max_batches": 0})
	if err != nil {
		t.Fatal(err)
	}
	if second.Duplicates != 3 || fmt.Sprint(second.JobIDs) != fmt.Sprint(first.JobIDs) {
		t.Fatalf("second enqueue = %+v, want the first's jobs %v as 3 duplicates", second, first.JobIDs)
	}
	f.start(t, cfg)
	if err := ins.Wait(ctx, first, riverenrich.WaitOptions{Interval: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	// And once more after it finished: still nothing new to do.
	third, err := ins.Enqueue(ctx, "run-2", 3, map[string]int{"max_batches": 0})
	if err != nil || third.Duplicates != 3 {
		t.Fatalf("enqueue after the run = %+v, %v", third, err)
	}
	if err := ins.Wait(ctx, third, riverenrich.WaitOptions{Interval: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	f.check(t, 200, 3, 10)
	if got := f.calls.Load(); got != 200 {
		t.Errorf("%d enrichments for 200 rows enqueued twice", got)
	}
}

func TestChangedPartitionCountRefused(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 50)
	ins := f.enqueuer(t)
	ctx := context.Background()
	if _, err := ins.Enqueue(ctx, "run-3", 4, nil); err != nil {
		t.Fatal(err)
	}
	for _, p := range []int{2, 8, 1} {
		_, err := ins.Enqueue(ctx, "run-3", p, nil)
		if !errors.Is(err, batchenrich.ErrPartitionsChanged) {
			t.Fatalf("enqueue with %d partitions after 4: err = %v", p, err)
		}
		t.Log(err)
	}
	var jobs int
	if err := f.db.Get(&jobs, `SELECT count(*) FROM river_job`); err != nil || jobs != 4 {
		t.Fatalf("%d jobs in river_job, want 4 (%v)", jobs, err)
	}
}

// TestEnqueueArgumentsRefused: a bad run key or partition count is a
// configuration mistake, refused as every other one is (a
// *batchenrich.ConfigError naming the argument), before anything is
// recorded or inserted.
func TestEnqueueArgumentsRefused(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 1)
	ins := f.enqueuer(t)
	ctx := context.Background()
	for _, c := range []struct {
		run        string
		partitions int
		field      string
	}{{"", 2, "run"}, {"run-4", 0, "partitions"}, {"run-4", 4097, "partitions"}, {"run#4", 2, "Durable.RunKey"}} {
		_, err := ins.Enqueue(ctx, c.run, c.partitions, nil)
		var ce *batchenrich.ConfigError
		if !errors.As(err, &ce) || ce.Field != c.field || !errors.Is(err, batchenrich.ErrInvalidConfig) {
			t.Errorf("Enqueue(%q, %d): err = %v, want a ConfigError naming %s", c.run, c.partitions, err, c.field)
		}
		t.Log(err)
	}
	var n int
	if err := f.db.Get(&n, `SELECT (SELECT count(*) FROM river_job) + (SELECT count(*) FROM batchenrich_checkpoints)`); err != nil || n != 0 {
		t.Fatalf("%d jobs and checkpoints recorded (%v), want none", n, err)
	}
}

// TestTakeoverOfLostWorker plays a worker that died: its job is left
// "running" by an attempt nobody works on (no partition lock held). A
// working Client must put it back and finish the partition, where River
// alone would wait an hour.
func TestTakeoverOfLostWorker(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 100)
	cfg := f.config(t)
	ins := f.enqueuer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e, err := ins.Enqueue(ctx, "run-4", 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Its only attempt is in use: a takeover that spent it would leave
	// the job none if it failed once more.
	if _, err := f.db.Exec(`UPDATE river_job SET state = 'running', attempt = 1, max_attempts = 1, attempted_at = now() - interval '1 minute',
		attempted_by = ARRAY['dead-worker'] WHERE id = $1`, e.JobIDs[1]); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	f.start(t, cfg)
	if err := ins.Wait(ctx, e, riverenrich.WaitOptions{Interval: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	f.check(t, 100, 2, 10)
	var job struct {
		Takeovers int `db:"takeovers"`
		Attempt   int `db:"attempt"`
	}
	if err := f.db.Get(&job, `SELECT (metadata ->> 'batchenrich:takeovers')::int AS takeovers, attempt FROM river_job WHERE id = $1`, e.JobIDs[1]); err != nil || job.Takeovers != 1 {
		t.Fatalf("takeovers recorded = %d, %v; want 1", job.Takeovers, err)
	}
	if job.Attempt != 1 {
		t.Errorf("the job ended at attempt %d, want 1: the takeover spent an attempt", job.Attempt)
	}
	t.Logf("lost job taken over and finished in %v", took)
}

func TestConfigRefused(t *testing.T) {
	t.Parallel()
	store := batchenrich.CheckpointStore(struct{ batchenrich.CheckpointStore }{})
	_, err := riverenrich.New(riverenrich.Config[row, int64]{DB: nil})
	var ce *batchenrich.ConfigError
	if !errors.As(err, &ce) || ce.Package != "riverenrich" || ce.Field != "DB" || !errors.Is(err, batchenrich.ErrInvalidConfig) ||
		!strings.HasPrefix(err.Error(), "riverenrich: invalid DB: ") {
		t.Fatalf("nil DB: err = %v", err)
	}
	f := newFixture(t, 1)
	_, err = riverenrich.New(riverenrich.Config[row, int64]{Job: "test", DB: f.db.DB, Store: store})
	if !errors.As(err, &ce) || ce.Package != "riverenrich" || ce.Field != "Store" ||
		!errors.Is(err, riverenrich.ErrNotLocker) || !errors.Is(err, batchenrich.ErrInvalidConfig) {
		t.Fatalf("store without locks: err = %v, want riverenrich's ConfigError for Store wrapping ErrNotLocker", err)
	}
	// A working Client missing its Enricher or its Sink: the error names
	// the one missing.
	for _, missing := range []string{"Enricher", "Sink"} {
		cfg := f.config(t)
		if missing == "Enricher" {
			cfg.Enricher = nil
		} else {
			cfg.Sink = nil
		}
		_, err := riverenrich.New(cfg)
		if !errors.As(err, &ce) || ce.Field != missing {
			t.Errorf("no %s: err = %v", missing, err)
		}
	}
}

// TestStopHandsPartitionsBack stops a working Client mid-run: each of its
// jobs commits the batch it is on and goes back to the queue, its locks
// are released, and another Client finishes the run without enriching any
// row twice.
func TestStopHandsPartitionsBack(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 300)
	cfg := f.config(t)
	slow := cfg.Enricher
	cfg.Enricher = batchenrich.EnricherFunc[row, int64](func(ctx context.Context, r row) (int64, error) {
		time.Sleep(5 * time.Millisecond)
		return slow.Enrich(ctx, r)
	})
	first, err := riverenrich.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := first.Start(ctx); err != nil {
		t.Fatal(err)
	}
	e, err := first.Enqueue(ctx, "run-5", 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		var n int
		if err := f.db.Get(&n, `SELECT count(*) FROM res`); err != nil {
			t.Fatal(err)
		}
		if n >= 30 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d rows stored after a minute, want 30 before stopping", n) // a hang guard
		}
	}
	if err := first.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	var stored, running int
	if err := f.db.Get(&stored, `SELECT count(*) FROM res`); err != nil {
		t.Fatal(err)
	}
	if err := f.db.Get(&running, `SELECT count(*) FROM river_job WHERE state = 'running'`); err != nil || running != 0 {
		t.Fatalf("%d jobs still running after Stop (%v)", running, err)
	}
	if stored == 300 {
		t.Skip("the run finished before Stop; nothing to hand back")
	}
	for p := range 3 {
		key := batchenrich.Partition{Index: p, Count: 3}.RunKey("run-5")
		unlock, ok, err := f.store.TryLock(ctx, key)
		if err != nil || !ok {
			t.Fatalf("partition %d still locked after Stop: %v, %v", p, ok, err)
		}
		_ = unlock()
	}
	f.start(t, f.config(t))
	if err := first.Wait(ctx, e, riverenrich.WaitOptions{Interval: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	f.check(t, 300, 3, 10)
	if got := f.calls.Load(); got != 300 {
		t.Errorf("%d enrichments for 300 rows: Stop re-enriched %d", got, got-300)
	}
	t.Logf("stopped with %d of 300 rows stored", stored)
}

// TestFailedJobRetriedSoon fails a partition's first two attempts (its
// Source cannot be built): the job is retried after 1 s then 2 s, not
// after River's default backoff (1 s then 16 s), and the run completes.
//
// The retry's schedule is read from the job River recorded, not from the
// test's wall time (River's scheduler and the load decide when a retry
// actually runs): after the second failure River scheduled the job 2 s
// after the moment the Source failed, plus River's own bookkeeping in
// between; its default would be 16 s ± 10 %.
func TestFailedJobRetriedSoon(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 60)
	cfg := f.config(t)
	var failures atomic.Int64
	var lastFailure atomic.Pointer[time.Time]
	src := cfg.Source
	cfg.Source = func(ctx context.Context, job riverenrich.Job) (batchenrich.Source[row], error) {
		if job.Partition.Index == 0 && failures.Load() < 2 {
			failures.Add(1)
			now := time.Now()
			lastFailure.Store(&now)
			return nil, errors.New("database restarting")
		}
		return src(ctx, job)
	}
	c := f.start(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e, err := c.Enqueue(ctx, "run-6", 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Wait(ctx, e, riverenrich.WaitOptions{Interval: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if failures.Load() != 2 {
		t.Fatalf("%d failures, want 2", failures.Load())
	}
	var scheduled time.Time
	if err := f.db.Get(&scheduled, `SELECT scheduled_at FROM river_job WHERE id = $1`, e.JobIDs[0]); err != nil {
		t.Fatal(err)
	}
	// 2 s is the policy (less a millisecond: the database rounds its
	// timestamps to microseconds); up to 10 s more leaves River's
	// bookkeeping between the failure and its NextRetry call all the room
	// a loaded machine needs, and stays below the default's 14.4 s.
	after := scheduled.Sub(*lastFailure.Load())
	if after < 2*time.Second-time.Millisecond || after > 12*time.Second {
		t.Fatalf("after its second failure the job was scheduled %v later, want 2 s (River's default: 16 s)", after)
	}
	t.Logf("retry scheduled %v after the second failure", after)
	f.check(t, 60, 2, 10)
	var attempts int
	if err := f.db.Get(&attempts, `SELECT attempt FROM river_job WHERE id = $1`, e.JobIDs[0]); err != nil || attempts != 3 {
		t.Fatalf("partition 0's job took %d attempts (%v), want 3", attempts, err)
	}
}

// TestEnqueueTxFollowsTheTransaction enqueues inside the caller's
// transaction: rolled back, no job exists; committed, the run's jobs do.
func TestEnqueueTxFollowsTheTransaction(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 10)
	ins := f.enqueuer(t)
	ctx := context.Background()
	count := func() int {
		var n int
		if err := f.db.Get(&n, `SELECT count(*) FROM river_job`); err != nil {
			t.Fatal(err)
		}
		return n
	}
	tx, err := f.db.DB.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ins.EnqueueTx(ctx, tx, "run-7", 3, nil); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 0 {
		t.Fatalf("%d jobs after a rolled-back enqueue", n)
	}
	tx, err = f.db.DB.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`INSERT INTO src VALUES (1000)`); err != nil { // the caller's own work
		t.Fatal(err)
	}
	if _, err := ins.EnqueueTx(ctx, tx, "run-7", 3, nil); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 0 {
		t.Fatalf("%d jobs visible before the commit", n)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 3 {
		t.Fatalf("%d jobs after the commit, want 3", n)
	}
}

// TestFatalCancelsTheJob: an Enricher's Fatal error (the program's fault:
// every attempt would fail the same way) cancels the partition's job at
// its first attempt instead of retrying it up to River's MaxAttempts.
func TestFatalCancelsTheJob(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 20)
	cfg := f.config(t)
	cfg.Enricher = batchenrich.EnricherFunc[row, int64](func(ctx context.Context, r row) (int64, error) {
		f.calls.Add(1)
		return 0, batchenrich.Fatal(errors.New("request template has no {id}"))
	})
	c := f.start(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	e, err := c.Enqueue(ctx, "run-fatal", 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = c.Wait(ctx, e, riverenrich.WaitOptions{Interval: 50 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "cancelled") || !strings.Contains(err.Error(), "request template has no {id}") {
		t.Fatalf("Wait: %v, want the job cancelled with the Fatal error", err)
	}
	var attempts int
	if err := f.db.Get(&attempts, `SELECT attempt FROM river_job WHERE id = $1`, e.JobIDs[0]); err != nil || attempts != 1 {
		t.Fatalf("the job took %d attempts (%v), want 1", attempts, err)
	}
	t.Log(err)
}

// checkedSource is a Source whose Check refuses its configuration.
type checkedSource struct {
	batchenrich.Source[row]
	checked *atomic.Int64
}

func (s checkedSource) Check(context.Context) error {
	s.checked.Add(1)
	return errors.New("source: invalid SourceConfig.Table: no table \"srcx\"")
}

// TestSourceCheckedBeforeWork: the partition's Source is checked
// (batchenrich.Checker) before anything is read or enriched, as a Runner
// checks its Source, even though the job wraps it to end its slice.
func TestSourceCheckedBeforeWork(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 20)
	cfg := f.config(t)
	var checked, reads atomic.Int64
	src := cfg.Source
	cfg.Source = func(ctx context.Context, job riverenrich.Job) (batchenrich.Source[row], error) {
		s, err := src(ctx, job)
		if err != nil {
			return nil, err
		}
		counted := batchenrich.SourceFunc[row](func(ctx context.Context, after batchenrich.Cursor, limit int) ([]row, batchenrich.Cursor, error) {
			reads.Add(1)
			return s.Read(ctx, after, limit)
		})
		return checkedSource{Source: counted, checked: &checked}, nil
	}
	c := f.start(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	e, err := c.Enqueue(ctx, "run-checked", 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A Check's refusal would be refused again: the job is cancelled at
	// its first attempt (the Check is called once), and the waiter gets
	// the Check's text.
	err = c.Wait(ctx, e, riverenrich.WaitOptions{Interval: 50 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), `no table "srcx"`) || !strings.Contains(err.Error(), "partition 0/1") {
		t.Fatalf("Wait: %v; want the Check's error, naming the partition", err)
	}
	if checked.Load() != 1 || reads.Load() != 0 || f.calls.Load() != 0 {
		t.Fatalf("Check called %d times, %d reads, %d enrichments: want the Source checked once, before any read", checked.Load(), reads.Load(), f.calls.Load())
	}
	t.Log(err)
}

// TestReshapedRunRefused: a run whose checkpoint was recorded with
// another batch size (batchenrich.ErrCheckpointMismatch: retrying cannot
// help) is refused at enqueue by a Client that knows the job's Options,
// with the core's text; enqueued by one that does not, its job is
// cancelled at its first attempt, not retried up to River's MaxAttempts.
// Here the run's first job was deleted, as River's cleaner deletes
// completed jobs, and the run enqueued again with other parameters.
func TestReshapedRunRefused(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 40)
	cfg := f.config(t)
	cfg.Options = func(job riverenrich.Job) (batchenrich.Options, error) {
		var p struct{ B, M int }
		if err := json.Unmarshal(job.Params, &p); err != nil {
			return batchenrich.Options{}, err
		}
		return batchenrich.Options{BatchSize: p.B, MaxBatches: p.M, Concurrency: 4}, nil
	}
	c := f.start(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	e, err := c.Enqueue(ctx, "run-reshape", 1, map[string]int{"B": 10, "M": 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Wait(ctx, e, riverenrich.WaitOptions{Interval: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.Exec(`DELETE FROM river_job WHERE id = $1`, e.JobIDs[0]); err != nil {
		t.Fatal(err)
	}
	calls := f.calls.Load()
	_, err = c.Enqueue(ctx, "run-reshape", 1, map[string]int{"B": 20})
	if !errors.Is(err, batchenrich.ErrCheckpointMismatch) || !strings.Contains(err.Error(), "BatchSize 10 (this run: 20)") {
		t.Fatalf("enqueue with another batch size: %v", err)
	}
	t.Log(err)
	var jobs int
	if err := f.db.Get(&jobs, `SELECT count(*) FROM river_job`); err != nil || jobs != 0 {
		t.Fatalf("%d jobs after a refused enqueue (%v)", jobs, err)
	}
	e, err = f.enqueuer(t).Enqueue(ctx, "run-reshape", 1, map[string]int{"B": 20})
	if err != nil || e.Duplicates != 0 {
		t.Fatalf("enqueue without Options: %+v, %v", e, err)
	}
	err = c.Wait(ctx, e, riverenrich.WaitOptions{Interval: 50 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "cancelled") || !strings.Contains(err.Error(), "BatchSize 10 (this run: 20)") {
		t.Fatalf("Wait: %v, want the job cancelled with the mismatch", err)
	}
	var attempts int
	if err := f.db.Get(&attempts, `SELECT attempt FROM river_job WHERE id = $1`, e.JobIDs[0]); err != nil || attempts != 1 || f.calls.Load() != calls {
		t.Fatalf("the job took %d attempts (%v), %d enrichments: want 1 attempt, none", attempts, err, f.calls.Load()-calls)
	}
	t.Log(err)
}

// TestTakeoverTellsExecutionsApart: River gives a snoozed job (a slice's
// end) its attempt number back, so a job seen unlocked in one execution
// and again in the next has the same attempt. Only the same execution
// (same attempt and attempted_at) seen twice is a lost worker's; a live
// worker's job, seen between its slices, is never taken over.
func TestTakeoverTellsExecutionsApart(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 10)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ins := f.enqueuer(t)
	e, err := ins.Enqueue(ctx, "run-exec", 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.Exec(`UPDATE river_job SET state = 'running', attempt = 3, attempted_at = now() - interval '10 seconds'
		WHERE id = $1`, e.JobIDs[0]); err != nil {
		t.Fatal(err)
	}
	row, err := ins.River().JobGet(ctx, e.JobIDs[0])
	if err != nil || row.AttemptedAt == nil {
		t.Fatalf("job %+v, %v", row, err)
	}
	attemptedAt := *row.AttemptedAt
	c, err := riverenrich.New(f.config(t)) // not started: no loop of its own, the test looks
	if err != nil {
		t.Fatal(err)
	}
	state := func() (s string, attempt int) {
		t.Helper()
		row := f.db.QueryRow(`SELECT state, attempt FROM river_job WHERE id = $1`, e.JobIDs[0])
		if err := row.Scan(&s, &attempt); err != nil {
			t.Fatal(err)
		}
		return s, attempt
	}
	// Seen before in an earlier execution with the same attempt number.
	c.TakeoverLook(ctx, e.JobIDs[0], 3, attemptedAt.Add(-5*time.Second))
	if s, _ := state(); s != "running" {
		t.Fatalf("job %s after a look that saw another execution: taken over", s)
	}
	// Seen before in this very execution: its worker is lost.
	c.TakeoverLook(ctx, e.JobIDs[0], 3, attemptedAt)
	if s, attempt := state(); s != "available" || attempt != 2 {
		t.Fatalf("job %s at attempt %d after two looks at one execution; want available, its attempt 3 given back (2)", s, attempt)
	}
}
