package contenders

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/batchenrich/batchenrich/bench/internal/harness"
	"github.com/batchenrich/batchenrich/bench/internal/job"
)

// HTTPWaves is not an implementation of the job but a measure of the
// machine: the HTTP part of the job alone, in the library's schedule. It
// sends the profile requests of the expected travelers (ids 1..N, named as
// the harness seeds them) in strict waves: the requests of one BatchSize
// window, at most Concurrency at a time, over a keep-alive transport tuned
// for one host; the next window starts only when every response of this
// one has been read and decoded. No database, no retries, no transform
// beyond decoding the echo and checking the echoed traveler_id.
//
// Its time is what any contender keeping the strict batch order needs at
// least on this machine for the requests alone, so the harness reports the
// others against it as well as against the theoretical floor. It stores
// nothing: the harness checks its requests served and its own count of
// verified responses instead of the results table.
func HTTPWaves(ctx context.Context, cfg harness.Config) (harness.Stats, error) {
	var st harness.Stats
	client, tr := tunedClient(cfg.Concurrency)
	defer tr.CloseIdleConnections()

	total := cfg.Expected()
	var verified atomic.Int64
	for start, batch := 0, 1; start < total; start, batch = start+cfg.BatchSize, batch+1 {
		end := min(start+cfg.BatchSize, total)
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(cfg.Concurrency)
		for id := int64(start + 1); id <= int64(end); id++ {
			g.Go(func() error {
				t := job.Traveler{ID: id, Name: "Traveler " + strconv.FormatInt(id, 10)}
				status, body, err := get(gctx, client, job.ProfileURL(cfg.TargetURL, t))
				if err != nil {
					return err
				}
				var e job.Echo
				if err := json.Unmarshal(body, &e); err != nil {
					return fmt.Errorf("traveler %d: %w", id, err)
				}
				if r := job.FromEcho(t, batch, status, body, &e); !r.IsValid || status != http.StatusOK {
					return fmt.Errorf("traveler %d: status %d: %s", id, status, r.ValidationError)
				}
				verified.Add(1)
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return st, fmt.Errorf("http-waves: batch %d: %w", batch, err)
		}
		st.Batches++
	}
	st.Written = int(verified.Load())
	return st, nil
}
