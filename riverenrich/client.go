package riverenrich

import (
	"context"
	"database/sql"
	"fmt"
	"sync"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	"github.com/batchenrich/batchenrich"
)

// Client enqueues the partitions of runs as River jobs and, unless it
// only enqueues, works on them: each job runs one partition's Runner for
// a slice of time, and a takeover loop frees the jobs of dead workers.
// Create one with New, Start it, and Stop it.
type Client[T, R any] struct {
	cfg    Config[T, R]
	river  *river.Client[*sql.Tx]
	locker batchenrich.Locker
	enr    batchenrich.Enricher[T, R]

	drain     chan struct{} // closed by Stop: slices end at their next batch boundary
	drainOnce sync.Once

	bg     errgroup.Group
	stopBg context.CancelFunc
}

// New validates cfg and returns a Client, with a River client built on
// cfg.DB through riverdatabasesql. It returns a *batchenrich.ConfigError
// (Package "riverenrich") naming the first bad field, or River's own
// configuration error, wrapped. It does not touch the database; call
// Migrate once first.
func New[T, R any](cfg Config[T, R]) (*Client[T, R], error) {
	if err := cfg.withDefaults(); err != nil {
		return nil, err
	}
	c := &Client[T, R]{cfg: cfg, locker: cfg.Store.(batchenrich.Locker), enr: cfg.Enricher, drain: make(chan struct{})}
	if cfg.Concurrency > 0 && c.enr != nil {
		c.enr = limited(semaphore.NewWeighted(int64(cfg.Concurrency)), c.enr)
	}
	rc := &river.Config{
		Logger:            cfg.Logger,
		Schema:            cfg.Schema,
		FetchPollInterval: cfg.FetchPollInterval,
	}
	if cfg.FetchPollInterval > 0 && cfg.FetchPollInterval < river.FetchCooldownDefault {
		rc.FetchCooldown = cfg.FetchPollInterval
	}
	if cfg.Source != nil {
		workers := river.NewWorkers()
		if err := river.AddWorkerSafely[PartitionArgs](workers, &worker[T, R]{c: c}); err != nil {
			return nil, fmt.Errorf("riverenrich: %w", err)
		}
		rc.Workers = workers
		rc.Queues = map[string]river.QueueConfig{cfg.queue(): {MaxWorkers: cfg.MaxPartitions}}
	}
	rv, err := river.NewClient(riverdatabasesql.New(cfg.DB), rc)
	if err != nil {
		return nil, fmt.Errorf("riverenrich: river client: %w", err)
	}
	c.river = rv
	return c, nil
}

// River returns the underlying River client, to insert other jobs,
// subscribe to events or list jobs.
func (c *Client[T, R]) River() *river.Client[*sql.Tx] { return c.river }

// Start starts working on partition jobs (for a Client with a Source)
// and the takeover loop; it returns once they run. Call Stop to end them:
// the end of ctx does not stop them (River would then stop at once,
// cancelling the batch each partition is on), so that a program stopping
// on a signal can let each partition commit its batch (see Stop). The
// jobs' contexts carry ctx's values.
func (c *Client[T, R]) Start(ctx context.Context) error {
	if c.cfg.Source == nil {
		return nil
	}
	if err := c.river.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("riverenrich: start: %w", err)
	}
	if c.cfg.TakeoverInterval > 0 {
		bctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		c.stopBg = cancel
		c.bg.Go(func() error {
			c.takeoverLoop(bctx)
			return nil
		})
	}
	return nil
}

// Stop stops softly: it ends every slice at a batch boundary (each job
// commits the batch it is on, and the next one if its window was already
// read ahead, then puts itself back in the queue for any worker, no
// attempt spent), waits for the jobs to return, releasing their run
// locks, and stops the takeover loop. It takes as long as the slowest
// partition's batch in flight takes to finish; if ctx ends first, the
// jobs are cancelled instead, at once (their current batch is not
// written; it is re-enriched by whoever continues), and Stop returns
// within SliceGrace more at most. A program stopping on SIGINT or SIGTERM
// calls Stop with a context that a second signal (or a deadline) cancels.
func (c *Client[T, R]) Stop(ctx context.Context) error {
	if c.cfg.Source == nil {
		return nil
	}
	c.drainOnce.Do(func() { close(c.drain) })
	err := c.river.Stop(ctx)
	if err != nil && ctx.Err() != nil {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), SliceGrace)
		err = c.river.StopAndCancel(sctx)
		cancel()
	}
	if c.stopBg != nil {
		c.stopBg()
	}
	_ = c.bg.Wait()
	if err != nil {
		return fmt.Errorf("riverenrich: stop: %w", err)
	}
	return nil
}

// draining reports whether Stop was called.
func (c *Client[T, R]) draining() bool {
	select {
	case <-c.drain:
		return true
	default:
		return false
	}
}
