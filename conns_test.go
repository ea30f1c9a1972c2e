package batchenrich_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/batchenrichtest"
)

// fakePool is a ConnUse's Pool capped at max connections, recording what it
// was asked for.
type fakePool struct {
	max   int
	mu    sync.Mutex
	asked []batchenrich.ConnUse
}

func (p *fakePool) CheckConns(_ context.Context, n batchenrich.ConnUse) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.asked = append(p.asked, n)
	if n.Conns > p.max {
		return fmt.Errorf("pool of %d: %d needed (%s)", p.max, n.Conns, n.For)
	}
	return nil
}

func (p *fakePool) needs() []batchenrich.ConnUse {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]batchenrich.ConnUse(nil), p.asked...)
}

// The components of the tests below, each saying what it takes from pool
// as sqlbatch's do.
type (
	poolSource struct {
		batchenrich.Source[item]
		pool *fakePool
	}
	poolSink struct {
		*batchenrichtest.Sink[item, int]
		pool *fakePool
	}
	poolStore struct {
		*batchenrichtest.Checkpoints
		pool *fakePool
	}
)

func (s poolSource) ConnUse(o batchenrich.Options) []batchenrich.ConnUse {
	return []batchenrich.ConnUse{{Pool: s.pool, Conns: 1, Turns: o.NoPrefetch, For: "read"}}
}

func (s poolSink) ConnUse(batchenrich.Options) []batchenrich.ConnUse {
	return []batchenrich.ConnUse{{Pool: s.pool, Conns: 1, Turns: true, For: "write"}}
}

func (s poolStore) ConnUse(batchenrich.Options) []batchenrich.ConnUse {
	return []batchenrich.ConnUse{{Pool: s.pool, Conns: 1, Turns: true, For: "save"}, {Pool: s.pool, Conns: 1, For: "lock"}}
}

// TestConnsCheckedBeforeWork: Run, a NewPartitioned run, a run told that
// others like it work at once (Options.RunsAtOnce) and a Replay of a
// partitioned run ask each pool for what all they hold at once, and a
// refusal stops them before any enrichment.
func TestConnsCheckedBeforeWork(t *testing.T) {
	t.Parallel()
	var enriched atomic.Int64
	enr := batchenrich.EnricherFunc[item, int](func(ctx context.Context, i item) (int, error) {
		enriched.Add(1)
		return double(ctx, i)
	})
	store := batchenrichtest.NewCheckpoints()
	runner := func(pool *fakePool, key string, noPrefetch bool, atOnce int) *batchenrich.Runner[item, int] {
		r, err := batchenrich.New[item, int](poolSource{batchenrichtest.NewSliceSource(items(30)), pool}, enr,
			poolSink{batchenrichtest.NewSink[item, int](), pool},
			batchenrich.Options{BatchSize: 10, NoPrefetch: noPrefetch, RunsAtOnce: atOnce, Durable: &batchenrich.Durable{Store: poolStore{store, pool}, RunKey: key}})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	partitioned := func(pool *fakePool, parts int) *batchenrich.Runner[item, int] {
		pr, err := batchenrich.NewPartitioned(parts, func(p batchenrich.Partition) (batchenrich.Source[item], error) {
			var mine []item
			for _, i := range items(40) {
				if int(i)%p.Count == p.Index {
					mine = append(mine, i)
				}
			}
			return poolSource{batchenrichtest.NewSliceSource(mine), pool}, nil
		}, enr, func(batchenrich.Partition) (batchenrich.Sink[item, int], error) {
			return poolSink{batchenrichtest.NewSink[item, int](), pool}, nil
		}, batchenrich.Options{BatchSize: 10, Durable: &batchenrich.Durable{Store: poolStore{store, pool}, RunKey: "parts"}})
		if err != nil {
			t.Fatal(err)
		}
		return pr
	}
	refused := func(what string, err error, p *fakePool, conns, runs int, says string) {
		t.Helper()
		asked := p.needs()
		if runs > 1 {
			says = fmt.Sprintf("%d partitions at once, per partition: %s", runs, says)
		}
		if err == nil || enriched.Load() != 0 || len(asked) != 1 || asked[0].Conns != conns || asked[0].Pool != p || !strings.Contains(asked[0].For, says) {
			t.Fatalf("%s: %v after %d enrichments; pool asked %+v; want one ask of the pool for %d connections saying %q, refused before work",
				what, err, enriched.Load(), asked, conns, says)
		}
		t.Logf("%s: %v", what, err)
	}

	p := &fakePool{max: 2}
	_, err := runner(p, "one", false, 0).Run(context.Background())
	refused("Run", err, p, 3, 1, "1 for read, 1 for lock, 1 for write")

	p = &fakePool{max: 2}
	if _, err := runner(p, "noprefetch", true, 0).Run(context.Background()); err != nil || len(p.needs()) != 1 || p.needs()[0].Conns != 2 {
		t.Fatalf("NoPrefetch (reads take turns with writes): %v, asked %+v; want 2 connections, enough", err, p.needs())
	}
	enriched.Store(0)

	p = &fakePool{max: 8}
	_, err = runner(p, "at-once", false, 3).Run(context.Background())
	refused("RunsAtOnce 3", err, p, 9, 3, "1 for read")

	p = &fakePool{max: 11}
	_, err = partitioned(p, 4).Run(context.Background())
	refused("Partitioned", err, p, 12, 4, "1 for read, 1 for lock, 1 for write")

	// The partitions do not ask again: the NewPartitioned run asked for all.
	p = &fakePool{max: 6}
	if _, err := partitioned(p, 2).Run(context.Background()); err != nil || len(p.needs()) != 1 || p.needs()[0].Conns != 6 {
		t.Fatalf("2 partitions on a pool of 6: %v, asked %+v", err, p.needs())
	}
	enriched.Store(0)

	// A replay of the partitioned run holds, besides a run's 3, the run's
	// lock and each partition's.
	p = &fakePool{max: 5}
	rp, err := batchenrich.NewReplay[item, int](poolSource{batchenrichtest.NewSliceSource(items(3)), p}, enr,
		poolSink{batchenrichtest.NewSink[item, int](), p},
		batchenrich.Options{BatchSize: 10, Durable: &batchenrich.Durable{Store: poolStore{store, p}, RunKey: "parts"}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = rp.Run(context.Background())
	refused("Replay", err, p, 6, 1, "3 for lock (the replayed run and its partitions)")
}
