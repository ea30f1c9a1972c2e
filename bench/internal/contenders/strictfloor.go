package contenders

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/batchenrich/batchenrich/bench/internal/harness"
	"github.com/batchenrich/batchenrich/bench/internal/job"
)

// strictFloorTable is StrictFloor's checkpoint table: a run key, the last
// committed batch and the keyset cursor after it.
const strictFloorTable = "strict_floor_checkpoints"

// StrictFloor is not a competitor but the floor under strict mode (issue
// 21): the least a strictly ordered, durable run of the job can do. The
// requests of each window in strict waves, as HTTPWaves sends them (at most
// Concurrency in flight over the tuned transport, the next window only once
// every answer of this one is read and transformed), and after each wave
// the cheapest durable commit: one transaction holding a COPY of the
// wave's rows into the results table and the upsert of the run's
// checkpoint (batch and cursor), committed before the next wave starts.
// Around that, only what a resumable run cannot do without: the checkpoint
// table created if missing, the checkpoint loaded once (the run resumes
// after it), and the source read by keyset windows, the next one read
// while the current wave runs. No checks, no lock, no retries, no run
// state, one pool of at most two connections.
//
// batchenrich's strict mode does the same work with its guarantees on top
// (configuration checked against the catalog first, the run's lock, the
// run's identity and state in every checkpoint, retries): the harness
// reports every contender ÷ strict-floor.
func StrictFloor(ctx context.Context, cfg harness.Config) (harness.Stats, error) {
	var st harness.Stats
	called := time.Now()
	var waves, commits time.Duration
	var firstWave time.Time
	db, err := sql.Open("postgres", cfg.DatabaseURL)
	if err != nil {
		return st, err
	}
	defer db.Close()
	db.SetMaxOpenConns(2) // the commit's, and the read ahead's
	db.SetMaxIdleConns(2)
	client, tr := tunedClient(cfg.Concurrency)
	defer tr.CloseIdleConnections()

	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+strictFloorTable+
		` (run_key text PRIMARY KEY, batch bigint NOT NULL, "cursor" bigint NOT NULL, updated_at timestamptz NOT NULL)`); err != nil {
		return st, fmt.Errorf("strict-floor: checkpoint table: %w", err)
	}
	var done int
	var last int64
	err = db.QueryRowContext(ctx, `SELECT batch, "cursor" FROM `+strictFloorTable+` WHERE run_key = $1`, cfg.ExecutionID).Scan(&done, &last)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return st, fmt.Errorf("strict-floor: load checkpoint: %w", err)
	}

	type window struct {
		ts  []job.Traveler
		err error
	}
	readAhead := func(after int64) <-chan window {
		ch := make(chan window, 1)
		go func() {
			ts, err := keysetWindow(ctx, db, cfg, after)
			ch <- window{ts, err}
		}()
		return ch
	}
	next := readAhead(last)
	for batch := done + 1; cfg.MaxBatches == 0 || batch <= cfg.MaxBatches; batch++ {
		w := <-next
		if w.err != nil {
			return st, fmt.Errorf("strict-floor: batch %d: %w", batch, w.err)
		}
		if len(w.ts) == 0 {
			break
		}
		more := len(w.ts) == cfg.BatchSize && (cfg.MaxBatches == 0 || batch < cfg.MaxBatches)
		if more {
			next = readAhead(w.ts[len(w.ts)-1].ID)
		}
		t0 := time.Now()
		if firstWave.IsZero() {
			firstWave = t0
		}
		rows, err := floorWave(ctx, client, cfg, batch, w.ts)
		t1 := time.Now()
		if err == nil {
			err = floorCommit(ctx, db, cfg.ExecutionID, batch, w.ts[len(w.ts)-1].ID, rows)
		}
		waves, commits = waves+t1.Sub(t0), commits+time.Since(t1)
		if err != nil {
			if more {
				<-next // the read ahead ends before the pool closes
			}
			return st, fmt.Errorf("strict-floor: batch %d: %w", batch, err)
		}
		st.Batches++
		st.Written += len(rows)
		if !more {
			break
		}
	}
	if !firstWave.IsZero() {
		st.Detail = fmt.Sprintf("waves %.1f ms, commits %.1f (sums over batches); before the first wave %.1f ms", ms(waves), ms(commits), ms(firstWave.Sub(called)))
	}
	return st, nil
}

// floorWave sends the profile requests of ts, at most cfg.Concurrency at
// a time, and returns their rows in ts's order once every answer is read.
func floorWave(ctx context.Context, client *http.Client, cfg harness.Config, batch int, ts []job.Traveler) ([]job.Row, error) {
	rows := make([]job.Row, len(ts))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(cfg.Concurrency)
	for i, t := range ts {
		g.Go(func() error {
			status, body, err := get(gctx, client, job.ProfileURL(cfg.TargetURL, t))
			if err != nil {
				return err
			}
			rows[i] = job.Transform(t, batch, status, body)
			return nil
		})
	}
	return rows, g.Wait()
}

// floorCommit is the cheapest durable commit of one wave: in one
// transaction, a COPY of its rows into the results table and the upsert of
// the run's checkpoint.
func floorCommit(ctx context.Context, db *sql.DB, exec string, batch int, cursor int64, rows []job.Row) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit: ErrTxDone
	if err := copyIn(ctx, tx, exec, rows); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO `+strictFloorTable+` (run_key, batch, "cursor", updated_at) VALUES ($1, $2, $3, now())
ON CONFLICT (run_key) DO UPDATE SET batch = excluded.batch, "cursor" = excluded."cursor", updated_at = excluded.updated_at`,
		exec, batch, cursor); err != nil {
		return err
	}
	return tx.Commit()
}
