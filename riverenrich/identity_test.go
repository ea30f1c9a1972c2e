package riverenrich_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/riverenrich"
	"github.com/batchenrich/batchenrich/sqlbatch"
)

// enqueuerOf returns a Client of job that only enqueues, deriving its
// runs' Options from params {"B": batch size} when withOptions.
func (f *fixture) enqueuerOf(t *testing.T, job, fingerprint string, withOptions bool) *riverenrich.Client[row, int64] {
	t.Helper()
	cfg := riverenrich.Config[row, int64]{Job: job, Fingerprint: fingerprint, DB: f.db.DB, Store: f.store}
	if withOptions {
		cfg.Options = batchOptions
	}
	c, err := riverenrich.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// batchOptions reads a run's batch size from its params {"B": n}.
func batchOptions(job riverenrich.Job) (batchenrich.Options, error) {
	var p struct{ B int }
	if len(job.Params) > 0 {
		if err := json.Unmarshal(job.Params, &p); err != nil {
			return batchenrich.Options{}, err
		}
	}
	return batchenrich.Options{BatchSize: p.B, Concurrency: 4}, nil
}

// TestWorkerOfAnotherJobLeavesTheRunAlone: a worker built for job B (its
// own Sink table) never touches job A's run: the run waits for a worker
// of A (and its waiter is told, after WaitOptions.NoWorker, that none
// runs), A's worker finishes it, and B's table stays empty. A partition
// job of A put in B's queue by hand is cancelled by B, not run.
func TestWorkerOfAnotherJobLeavesTheRunAlone(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 100)
	if _, err := f.db.Exec(`CREATE TABLE res_b (id BIGINT PRIMARY KEY, batch_number INTEGER NOT NULL, part INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	cfgB := f.config(t)
	cfgB.Job = "job-b"
	cfgB.Sink = func(ctx context.Context, job riverenrich.Job) (batchenrich.Sink[row, int64], error) {
		return sqlbatch.NewSink(f.db, sqlbatch.SinkConfig[row, int64]{
			Table: "res_b", Key: []string{"id"}, Columns: []string{"id", "part"}, BatchColumn: "batch_number",
			Row: func(r batchenrich.Result[row, int64]) ([]any, error) {
				return []any{r.Item.ID, job.Partition.Index}, nil
			},
		})
	}
	b := f.start(t, cfgB)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	insA := f.enqueuerOf(t, "job-a", "", false)
	e, err := insA.Enqueue(ctx, "run-a", 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = insA.Wait(ctx, e, riverenrich.WaitOptions{Interval: 50 * time.Millisecond, NoWorker: time.Second})
	if !errors.Is(err, riverenrich.ErrNoWorker) || !strings.Contains(err.Error(), `start a worker of job "job-a"`) {
		t.Fatalf("Wait with only job B's worker: %v, want ErrNoWorker", err)
	}
	t.Log(err)
	cfgA := f.config(t)
	cfgA.Job = "job-a"
	f.start(t, cfgA)
	if err := insA.Wait(ctx, e, riverenrich.WaitOptions{Interval: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	f.check(t, 100, 2, 10)
	// The partitions' checkpoints record the job and its definition, the
	// Source's included (the slice wrapping it describes it).
	cp, err := f.store.Load(ctx, batchenrich.Partition{Index: 1, Count: 2}.RunKey("run-a"))
	if err != nil || cp.Job != "job-a" || !strings.Contains(cp.Definition, "source: ") || !strings.Contains(cp.Definition, "sink: ") {
		t.Fatalf("checkpoint of run-a partition 1: job %q, definition %q (%v)", cp.Job, cp.Definition, err)
	}
	var inB int
	if err := f.db.Get(&inB, `SELECT count(*) FROM res_b`); err != nil || inB != 0 {
		t.Fatalf("%d rows in job B's table (%v): B ran job A's run", inB, err)
	}

	// A job of A in B's queue (inserted by hand): B cancels it.
	res, err := b.River().Insert(ctx, riverenrich.PartitionArgs{Job: "job-a", Run: "run-x", Partition: 0, Partitions: 1},
		&river.InsertOpts{Queue: riverenrich.QueuePrefix + "job-b"})
	if err != nil {
		t.Fatal(err)
	}
	err = b.Wait(ctx, riverenrich.Enqueued{Run: "run-x", Partitions: 1, JobIDs: []int64{res.Job.ID}}, riverenrich.WaitOptions{Interval: 50 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), `belongs to job "job-a"`) || !strings.Contains(err.Error(), "cancelled") {
		t.Fatalf("Wait for job A's partition in B's queue: %v", err)
	}
	if err := f.db.Get(&inB, `SELECT count(*) FROM res_b`); err != nil || inB != 0 {
		t.Fatalf("%d rows in job B's table (%v)", inB, err)
	}
	t.Log(err)
}

// TestChangedEnqueueRefused: enqueueing a run whose jobs exist with other
// settings is refused, saying what differs in the core's words, instead
// of reported as duplicates that then run the first enqueue's settings;
// so is the same run key under another job or Fingerprint. The same
// enqueue again is a duplicate.
func TestChangedEnqueueRefused(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 10)
	ctx := context.Background()
	ins := f.enqueuerOf(t, "test", "v1", true)
	first, err := ins.Enqueue(ctx, "run-c", 2, map[string]int{"B": 10})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		by   *riverenrich.Client[row, int64]
		b    int
		says string
	}{
		{"batch size", ins, 20, "BatchSize 10 (this run: 20)"},
		{"other job", f.enqueuerOf(t, "other", "v1", true), 10, `job "test" (this run: "other")`},
		{"other fingerprint", f.enqueuerOf(t, "test", "v2", true), 10, `Fingerprint "v1" (this run: "v2")`},
		{"params, no Options", f.enqueuerOf(t, "test", "v1", false), 30, "other params"},
	} {
		_, err := c.by.Enqueue(ctx, "run-c", 2, map[string]int{"B": c.b})
		if !errors.Is(err, batchenrich.ErrCheckpointMismatch) || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: err = %v, want it to say %s", c.name, err, c.says)
			continue
		}
		t.Logf("%s: %v", c.name, err)
	}
	again, err := ins.Enqueue(ctx, "run-c", 2, map[string]int{"B": 10})
	if err != nil || again.Duplicates != 2 || again.JobIDs[0] != first.JobIDs[0] {
		t.Fatalf("the same enqueue again: %+v, %v", again, err)
	}
	var jobs int
	if err := f.db.Get(&jobs, `SELECT count(*) FROM river_job WHERE args ->> 'run' = 'run-c'`); err != nil || jobs != 2 {
		t.Fatalf("%d jobs (%v), want the first enqueue's 2", jobs, err)
	}
}

// TestErrorsReachTheWaiter: an error retrying cannot fix ends the
// partition's job at its first attempt (not retried), and the waiter
// returns its text, naming the partition: a Sink table without the
// unique index its Key needs (refused by the Sink's Check), and a profile
// API that is down (every item of a batch fails: ErrAllFailed).
func TestErrorsReachTheWaiter(t *testing.T) {
	t.Parallel()
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()
	for _, c := range []struct {
		name  string
		setup func(f *fixture, cfg *riverenrich.Config[row, int64])
		says  []string
	}{
		{"sink without unique index", func(f *fixture, cfg *riverenrich.Config[row, int64]) {
			if _, err := f.db.Exec(`CREATE TABLE res_nokey (id BIGINT NOT NULL, batch_number INTEGER NOT NULL, part INTEGER NOT NULL)`); err != nil {
				t.Fatal(err)
			}
			cfg.Sink = func(ctx context.Context, job riverenrich.Job) (batchenrich.Sink[row, int64], error) {
				return sqlbatch.NewSink(f.db, sqlbatch.SinkConfig[row, int64]{
					Table: "res_nokey", Key: []string{"id"}, Columns: []string{"id", "part"}, BatchColumn: "batch_number",
					Row: func(r batchenrich.Result[row, int64]) ([]any, error) {
						return []any{r.Item.ID, job.Partition.Index}, nil
					},
				})
			}
		}, []string{"SinkConfig.Key", "res_nokey"}},
		{"API down", func(f *fixture, cfg *riverenrich.Config[row, int64]) {
			cfg.Enricher = batchenrich.EnricherFunc[row, int64](func(ctx context.Context, r row) (int64, error) {
				f.calls.Add(1)
				resp, err := http.Get(downURL + "/profile?id=" + strconv.FormatInt(r.ID, 10))
				if err != nil {
					return 0, err
				}
				resp.Body.Close()
				return r.ID, nil
			})
		}, []string{"connection refused", "items failed"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, 40)
			cfg := f.config(t)
			c.setup(f, &cfg)
			w := f.start(t, cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			e, err := w.Enqueue(ctx, "run-err", 2, nil)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			err = w.Wait(ctx, e, riverenrich.WaitOptions{Interval: 50 * time.Millisecond})
			took := time.Since(start)
			if err == nil || !strings.Contains(err.Error(), "partition ") {
				t.Fatalf("Wait after %v: %v; want the partition's error", took, err)
			}
			if n := strings.Count(err.Error(), `run "run-err"`); n != 1 {
				t.Errorf("Wait's error names the run %d times, want once: %v", n, err)
			}
			for _, s := range c.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("Wait's error does not say %q: %v", s, err)
				}
			}
			var attempts int
			if err := f.db.Get(&attempts, `SELECT max(attempt) FROM river_job`); err != nil || attempts != 1 {
				t.Errorf("jobs took up to %d attempts (%v), want 1: retried", attempts, err)
			}
			t.Logf("after %v: %v", took.Round(time.Millisecond), err)
		})
	}
}
