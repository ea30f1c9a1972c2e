package contenders_test

import (
	"context"
	"errors"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/batchenrich/batchenrich/bench/internal/contenders"
	"github.com/batchenrich/batchenrich/bench/internal/harness"
	"github.com/batchenrich/batchenrich/bench/internal/profileapi"
)

// setup returns a config pointing at a fresh schema and a loopback API, or
// skips when BATCHENRICH_BENCH_DATABASE_URL is unset. When it is set but
// unreachable, the test fails.
func setup(tb testing.TB, latency time.Duration) (harness.Config, *harness.DB, *profileapi.Server) {
	tb.Helper()
	url := os.Getenv("BATCHENRICH_BENCH_DATABASE_URL")
	if url == "" {
		tb.Skip("BATCHENRICH_BENCH_DATABASE_URL not set")
	}
	ctx := context.Background()
	db, err := harness.OpenDB(ctx, url)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := db.Close(context.Background()); err != nil {
			tb.Error(err)
		}
	})
	srv, err := profileapi.Start(profileapi.HTTPBin, latency)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := srv.Close(); err != nil {
			tb.Error(err)
		}
	})
	return harness.Config{DatabaseURL: db.URL, TargetURL: srv.URL}, db, srv
}

// TestContenders runs every wired contender once on a small job, with a
// partial last window and a batch cap, and verifies the stored rows.
func TestContenders(t *testing.T) {
	base, db, srv := setup(t, 0)
	ctx := context.Background()
	for _, c := range contenders.All() {
		t.Run(c.Name, func(t *testing.T) {
			for _, shape := range []struct{ rows, batch, maxBatches int }{
				{250, 100, 0},  // partial last window
				{250, 100, 2},  // capped
				{300, 100, 0},  // exact windows
				{0, 100, 0},    // empty source
				{50, 1000, 20}, // one partial window
			} {
				if c.Partitioned && shape.maxBatches > 0 {
					continue // a cap applies per partition: not this job
				}
				cfg := base
				cfg.Rows, cfg.BatchSize, cfg.MaxBatches, cfg.Concurrency = shape.rows, shape.batch, shape.maxBatches, 8
				cfg.ExecutionID = harness.NewExecutionID()
				if err := db.Reset(ctx, cfg.ExecutionID, cfg.Rows); err != nil {
					t.Fatal(err)
				}
				srv.Reset()
				st, err := c.Run(ctx, cfg)
				if errors.Is(err, harness.ErrNotWired) {
					t.Skip("not wired")
				}
				if err != nil {
					t.Fatalf("%+v: %v", shape, err)
				}
				if !c.Probe {
					if err := db.Verify(ctx, cfg); err != nil {
						t.Fatalf("%+v: %v", shape, err)
					}
				}
				if st.Written != cfg.Expected() {
					t.Errorf("%+v: reported %d written, want %d", shape, st.Written, cfg.Expected())
				}
				if _, reqs := srv.Counters(); reqs != wantRequests(c, cfg) {
					t.Errorf("%+v: %d requests, want %d", shape, reqs, wantRequests(c, cfg))
				}
			}
		})
	}
}

// wantRequests is the number of API requests a contender makes for cfg's
// job: one per row, or for a bulk contender one per group of up to
// profileapi.MaxBulkIDs rows of each window (batch).
func wantRequests(c harness.Named, cfg harness.Config) int64 {
	if !c.Bulk {
		return int64(cfg.Expected())
	}
	var reqs int64
	for left := cfg.Expected(); left > 0; left -= cfg.BatchSize {
		window := min(left, cfg.BatchSize)
		reqs += int64((window + profileapi.MaxBulkIDs - 1) / profileapi.MaxBulkIDs)
	}
	return reqs
}

// BenchmarkContenders runs the CPU-bound job at a tenth of the scenario's
// size (2000 rows, batches of 200, concurrency 64). Allocations
// include the in-process profile API's; rows/s and allocs/row are reported.
//
//	BATCHENRICH_BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/batchenrich_bench?sslmode=disable \
//	  go test ./internal/contenders -run '^$' -bench . -benchmem -count 3
func BenchmarkContenders(b *testing.B) {
	base, db, srv := setup(b, 0)
	ctx := context.Background()
	for _, c := range contenders.All() {
		b.Run(c.Name, func(b *testing.B) {
			cfg := base
			cfg.Rows, cfg.BatchSize, cfg.Concurrency = 2000, 200, 64
			var rows int
			var m0, m1 runtime.MemStats
			var mallocs uint64
			for b.Loop() {
				b.StopTimer()
				cfg.ExecutionID = harness.NewExecutionID()
				if err := db.Reset(ctx, cfg.ExecutionID, cfg.Rows); err != nil {
					b.Fatal(err)
				}
				srv.Reset()
				runtime.ReadMemStats(&m0)
				b.StartTimer()
				_, err := c.Run(ctx, cfg)
				b.StopTimer()
				runtime.ReadMemStats(&m1)
				if errors.Is(err, harness.ErrNotWired) {
					b.Skip("not wired")
				}
				if err != nil {
					b.Fatal(err)
				}
				if !c.Probe {
					if err := db.Verify(ctx, cfg); err != nil {
						b.Fatal(err)
					}
				}
				mallocs += m1.Mallocs - m0.Mallocs
				rows += cfg.Expected()
				b.StartTimer()
			}
			b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(float64(mallocs)/float64(rows), "allocs/row")
		})
	}
}
