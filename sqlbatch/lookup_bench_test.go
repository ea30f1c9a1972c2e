package sqlbatch_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/lib/pq"
	"golang.org/x/sync/errgroup"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/batchenrichtest"
	"github.com/batchenrich/batchenrich/internal/testdb"
	"github.com/batchenrich/batchenrich/sqlbatch"
)

// BenchmarkLookup enriches 20,000 travelers from traveler_profiles on
// PostgreSQL, 100 keys per query, 4 queries at once, in batches of 1000:
// "lookup" with sqlbatch.Lookup under a Runner (an in-memory Source, a
// Sink that only counts), "hand-any" with a hand-written loop of the same
// shape (windows of 1000, an errgroup of 4, "= ANY($2)" with pq.Array,
// rows matched to items by id). Besides the time, each reports the
// process's CPU time per op (cpu-ms/op: user and system, the garbage
// collector included), which the load of a shared machine distorts less.
// Run both alternately:
//
//	go test -run '^$' -bench BenchmarkLookup -count 6 ./sqlbatch
func BenchmarkLookup(b *testing.B) {
	const n, batch, group, conc = 20000, 1000, 100, 4
	db := testdb.Postgres(b)
	mustExec(b, db, `CREATE TABLE traveler_profiles (region TEXT NOT NULL, traveler_id BIGINT NOT NULL,
		nickname TEXT NOT NULL, score INTEGER NOT NULL, PRIMARY KEY (region, traveler_id))`)
	mustExec(b, db, `INSERT INTO traveler_profiles SELECT 'eu', g, 'eu-' || g, g * 3 FROM generate_series(1, $1) g`, n)
	mustExec(b, db, `ANALYZE traveler_profiles`)
	db.SetMaxOpenConns(conc + 1)
	db.SetMaxIdleConns(conc + 1)
	travelers := make([]Traveler, n)
	for i := range travelers {
		travelers[i] = Traveler{ExecutionID: "e", TravelerID: int64(i + 1)}
	}
	ctx := context.Background()

	b.Run("lookup", func(b *testing.B) {
		l, err := sqlbatch.NewLookup[Traveler, Nickname](db, sqlbatch.LookupConfig[Traveler]{
			Table: "traveler_profiles", Key: "traveler_id", Filter: map[string]any{"region": "eu"},
			Columns: []string{"traveler_id", "nickname", "score"}, MaxItems: group,
			ItemKey: func(t Traveler) any { return t.TravelerID },
		})
		if err != nil {
			b.Fatal(err)
		}
		defer reportCPU(b)()
		for b.Loop() {
			found := 0
			sink := batchenrich.SinkFunc[Traveler, Nickname](func(_ context.Context, bt batchenrich.Batch[Traveler, Nickname]) error {
				for _, r := range bt.Results {
					if r.Err == nil && r.Value.TravelerID == r.Item.TravelerID {
						found++
					}
				}
				return nil
			})
			r, err := batchenrich.New(batchenrichtest.NewSliceSource(travelers), batchenrich.Enricher[Traveler, Nickname](l), sink,
				batchenrich.Options{BatchSize: batch, Concurrency: conc})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := r.Run(ctx); err != nil || found != n {
				b.Fatalf("found %d of %d: %v", found, n, err)
			}
		}
	})

	b.Run("hand-any", func(b *testing.B) {
		defer reportCPU(b)()
		for b.Loop() {
			found := 0
			for lo := 0; lo < n; lo += batch {
				window := travelers[lo:min(lo+batch, n)]
				vals := make([]Nickname, len(window))
				ok := make([]bool, len(window))
				g, gctx := errgroup.WithContext(ctx)
				g.SetLimit(conc)
				for glo := 0; glo < len(window); glo += group {
					part := window[glo:min(glo+group, len(window))]
					g.Go(func() error {
						ids := make([]int64, len(part))
						at := make(map[int64]int, len(part))
						for i, t := range part {
							ids[i], at[t.TravelerID] = t.TravelerID, glo+i
						}
						rows, err := db.QueryContext(gctx, `SELECT traveler_id, nickname, score FROM traveler_profiles
							WHERE region = $1 AND traveler_id = ANY($2)`, "eu", pq.Array(ids))
						if err != nil {
							return err
						}
						defer rows.Close()
						for rows.Next() {
							var v Nickname
							if err := rows.Scan(&v.TravelerID, &v.Nickname, &v.Score); err != nil {
								return err
							}
							if i, hit := at[v.TravelerID]; hit {
								vals[i], ok[i] = v, true
							}
						}
						return rows.Err()
					})
				}
				if err := g.Wait(); err != nil {
					b.Fatal(err)
				}
				for i := range window {
					if ok[i] && vals[i].TravelerID == window[i].TravelerID {
						found++
					}
				}
			}
			if found != n {
				b.Fatal(fmt.Sprintf("found %d of %d", found, n))
			}
		}
	})
}

// reportCPU returns a function reporting the process's CPU time per op
// since reportCPU was called, as cpu-ms/op.
func reportCPU(b *testing.B) func() {
	start := cpuTime()
	return func() { b.ReportMetric(float64(cpuTime()-start)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op") }
}
