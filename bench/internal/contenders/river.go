package contenders

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/bench/internal/harness"
	"github.com/batchenrich/batchenrich/bench/internal/job"
	"github.com/batchenrich/batchenrich/riverenrich"
	"github.com/batchenrich/batchenrich/sqlbatch"
)

// RiverProcesses is how many processes RiverFleet spreads its Partitions
// over: the contender's own and RiverProcesses-1 workers it starts.
const RiverProcesses = 3

// RiverWorkerEnv, when set (to a harness.Config in JSON), makes the bench
// binary a riverenrich worker until SIGTERM (see RiverWorker).
const RiverWorkerEnv = "ENRICHBENCH_RIVER_WORKER"

// riverMaxPartitions is the partitions one process works on at once:
// 8 over 3 processes, at most 3 each.
const riverMaxPartitions = (Partitions + RiverProcesses - 1) / RiverProcesses

// RiverFleet is the run split into Partitions partitions as River jobs
// (riverenrich, defaults but MaxPartitions), worked on by this process and
// RiverProcesses-1 worker processes it starts (same binary), each with at
// most riverMaxPartitions partitions and cfg.Concurrency per partition.
// The time includes starting the workers and River's fetch poll (1 s by
// default) before they pick jobs up; Stats.Phase is enqueue → all done.
func RiverFleet(ctx context.Context, cfg harness.Config) (harness.Stats, error) {
	var st harness.Stats
	db, c, enr, err := riverClient(ctx, cfg)
	if err != nil {
		return st, err
	}
	defer db.Close()
	defer enr.Close()
	spec, _ := json.Marshal(cfg)
	exe, err := os.Executable()
	if err != nil {
		return st, err
	}
	var workers []*exec.Cmd
	defer func() {
		for _, w := range workers {
			_ = w.Process.Signal(syscall.SIGTERM)
			_ = w.Wait()
		}
	}()
	for range RiverProcesses - 1 {
		w := exec.Command(exe)
		w.Env = workerEnv(string(spec))
		w.Stderr = os.Stderr
		if err := w.Start(); err != nil {
			return st, err
		}
		workers = append(workers, w)
	}
	if err := c.Start(ctx); err != nil {
		return st, err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = c.Stop(sctx)
	}()
	start := time.Now()
	e, err := c.Enqueue(ctx, cfg.ExecutionID, Partitions, nil)
	if err != nil {
		return st, err
	}
	if err := c.Wait(ctx, e, riverenrich.WaitOptions{Interval: 20 * time.Millisecond}); err != nil {
		return st, err
	}
	st.Phase = time.Since(start)
	if err := db.GetContext(ctx, &st.Written, `SELECT count(*) FROM traveler_batch_results WHERE execution_id = $1`, cfg.ExecutionID); err != nil {
		return st, err
	}
	if err := db.GetContext(ctx, &st.Batches, `SELECT count(*) FROM (SELECT DISTINCT partition_index, batch_number
		FROM traveler_batch_results WHERE execution_id = $1) b`, cfg.ExecutionID); err != nil {
		return st, err
	}
	st.Detail = fmt.Sprintf("%d partitions over %d processes; enqueue → done %.1f ms", Partitions, RiverProcesses, ms(st.Phase))
	return st, nil
}

// RiverWorker runs a riverenrich worker on the harness.Config in spec
// until SIGTERM or SIGINT, and returns the exit status.
func RiverWorker(spec string) int {
	var cfg harness.Config
	if err := json.Unmarshal([]byte(spec), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "river worker: bad spec:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	db, c, enr, err := riverClient(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "river worker:", err)
		return 1
	}
	defer db.Close()
	defer enr.Close()
	if err := c.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "river worker:", err)
		return 1
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Stop(sctx); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "river worker:", err)
		return 1
	}
	return 0
}

// riverClient builds one process's riverenrich Client for cfg's job.
func riverClient(ctx context.Context, cfg harness.Config) (*sqlx.DB, *riverenrich.Client[libTraveler, job.Row], interface{ Close() error }, error) {
	db, err := sqlx.Open("postgres", cfg.DatabaseURL)
	if err != nil {
		return nil, nil, nil, err
	}
	db.SetMaxOpenConns(2*riverMaxPartitions + 4)
	fail := func(err error) (*sqlx.DB, *riverenrich.Client[libTraveler, job.Row], interface{ Close() error }, error) {
		db.Close()
		return nil, nil, nil, err
	}
	if err := riverenrich.Migrate(ctx, db.DB, ""); err != nil {
		return fail(err)
	}
	store, err := sqlbatch.NewCheckpointStore(db, sqlbatch.CheckpointConfig{})
	if err != nil {
		return fail(err)
	}
	if err := store.CreateTable(ctx); err != nil {
		return fail(err)
	}
	total := riverMaxPartitions * cfg.Concurrency
	enr, err := libEnricher(cfg, total)
	if err != nil {
		return fail(err)
	}
	c, err := riverenrich.New(riverenrich.Config[libTraveler, job.Row]{
		Job:   "bench",
		DB:    db.DB,
		Store: store,
		Source: func(ctx context.Context, j riverenrich.Job) (batchenrich.Source[libTraveler], error) {
			return libSource(db, cfg, j.Partition)
		},
		Enricher: enr,
		Sink: func(ctx context.Context, j riverenrich.Job) (batchenrich.Sink[libTraveler, job.Row], error) {
			return libPartitionSink(db, cfg, j.Partition.Index)
		},
		Options: func(riverenrich.Job) (batchenrich.Options, error) {
			return batchenrich.Options{BatchSize: cfg.BatchSize, MaxBatches: cfg.MaxBatches, Concurrency: cfg.Concurrency}, nil
		},
		Concurrency:   total,
		MaxPartitions: riverMaxPartitions,
		Logger:        riverLogger(),
	})
	if err != nil {
		enr.Close()
		return fail(err)
	}
	return db, c, enr, nil
}

// riverLogger logs River's and riverenrich's warnings and errors to
// stderr when ENRICHBENCH_RIVER_LOG is set (a level: debug, info, warn).
func riverLogger() *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(os.Getenv("ENRICHBENCH_RIVER_LOG"))); err != nil {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// workerEnv is this process's environment for a worker: RiverWorkerEnv
// set, and no other job for the binary (the harness's child spec, which
// it checks first, would make the worker run this contender again).
func workerEnv(spec string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); name != RiverWorkerEnv && !strings.HasPrefix(name, "ENRICHBENCH_CHILD") {
			env = append(env, kv)
		}
	}
	return append(env, RiverWorkerEnv+"="+spec)
}
