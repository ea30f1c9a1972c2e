package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq" // PostgreSQL driver, "postgres"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/batchenrichtest"
	"github.com/batchenrich/batchenrich/bench/internal/admitapi"
	"github.com/batchenrich/batchenrich/httpenrich"
	"github.com/batchenrich/batchenrich/sqlbatch"
)

// The fleet scenarios (issue 23's shared budget) run 3 "processes" in
// this one: each with its own Enricher, Runner and sqlbatch.Budget (its
// own lease, on its own connection pool), against one admitapi, sharing
// the budget through PostgreSQL (-dsn, default $DATABASE_URL).
//
//	fleet30   K = 30, 60,000 items, 5 ms: one process at a fixed 30 over
//	          every item, vs 3 processes of 20,000 items each, each at a
//	          concurrency of 30 under a shared budget of 30 in flight.
//	          Wall time (until the last process ends), failed items, share
//	          of 429s.
//	fleetrate 3 processes of 1,000 items, a shared Rate of 300/s (K =
//	          1000): the most requests the API received in any 1-second
//	          window.
//	fleetkill 3 processes of 20,000 items at K = 30 under a budget of 30;
//	          at 3 s one "process" stops renewing (its connection pool is
//	          closed, as a SIGKILL would), and the time until the two
//	          others' shares add up to 30 again is measured.

// proc is one goroutine-"process" of a fleet scenario.
type proc struct {
	db     *sqlx.DB
	budget *sqlbatch.Budget
	e      *httpenrich.Enricher[item, json.RawMessage, json.RawMessage]
	kill   context.CancelFunc // ends its run
}

// newProc opens a process's connection pool, its Budget member and its
// Enricher at url; with an adaptive budget (cfg.Adaptive) or local, the
// Enricher has Config.Adaptive with a ceiling of conc.
func newProc(ctx context.Context, dsn, url string, cfg sqlbatch.BudgetConfig, conc int, local bool) (*proc, error) {
	db, err := sqlx.Open("postgres", dsn)
	if err != nil {
		return nil, err
	}
	b, err := sqlbatch.NewBudget(ctx, db, cfg)
	if err != nil {
		db.Close()
		return nil, err
	}
	ecfg := httpenrich.Config[item, json.RawMessage, json.RawMessage]{
		URL: url + "/items/{id}",
		Request: func(i item) (httpenrich.Params, error) {
			return httpenrich.Params{Path: map[string]string{"id": strconv.Itoa(int(i))}}, nil
		},
		Pool:   httpenrich.Pool{}.ForConcurrency(conc),
		Budget: b,
	}
	if cfg.Adaptive || local {
		ecfg.Adaptive = &httpenrich.Adaptive{MaxConcurrency: conc}
	}
	e, err := httpenrich.New(ecfg)
	if err != nil {
		b.Close()
		db.Close()
		return nil, err
	}
	return &proc{db: db, budget: b, e: e}, nil
}

// close closes the process's Enricher, Budget (its lease released) and
// pool, in that order.
func (p *proc) close() error {
	p.e.Close()
	err := p.budget.Close()
	return errors.Join(err, p.db.Close())
}

// enrich runs items through p with concurrency conc, counting the
// failed ones.
func (p *proc) enrich(ctx context.Context, items []item, conc, batchSize int, failed *atomic.Int64) error {
	sink := batchenrich.SinkFunc[item, json.RawMessage](func(_ context.Context, b batchenrich.Batch[item, json.RawMessage]) error {
		failed.Add(int64(b.Failed()))
		return nil
	})
	lt := &limitTracer{reasons: map[string]int{}, trace: os.Getenv("ADAPTIVEBENCH_TRACE") != "", began: time.Now(),
		prefix: fmt.Sprintf("p%d ", items[0]/item(len(items)))}
	r, err := batchenrich.New(batchenrichtest.NewSliceSource(items), p.e, sink,
		batchenrich.Options{BatchSize: batchSize, Concurrency: conc, Tracer: lt})
	if err != nil {
		return err
	}
	_, err = r.Run(ctx)
	return err
}

func itemsFrom(from, n int) []item {
	items := make([]item, n)
	for i := range items {
		items[i] = item(from + i + 1)
	}
	return items
}

func dsnOf(dsn string) (string, error) {
	if dsn == "" {
		dsn = os.Getenv("DATABASE_URL")
	}
	if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
		return "", errors.New("the fleet scenarios need -dsn (or $DATABASE_URL): a postgres:// URL")
	}
	return dsn, nil
}

// runFleet runs 3 processes of per items each at concurrency conc under
// the budget cfg, against h; each closes its Budget when its items are
// done. during runs in the background with the processes.
func runFleet(dsn string, h http.Handler, cfg sqlbatch.BudgetConfig, per, conc, batchSize int, during func(ctx context.Context, ps []*proc)) (time.Duration, int, []error) {
	return runFleetN(3, dsn, h, cfg, per, conc, batchSize, false, during)
}

// runFleetN is runFleet with n processes; local gives each Enricher
// Config.Adaptive even when the budget does not adapt.
func runFleetN(n int, dsn string, h http.Handler, cfg sqlbatch.BudgetConfig, per, conc, batchSize int, local bool, during func(ctx context.Context, ps []*proc)) (time.Duration, int, []error) {
	srv := httptest.NewServer(h)
	defer srv.Close()
	cfg.Upstream = strings.TrimPrefix(srv.URL, "http://")
	ctx := context.Background()
	var ps []*proc
	for range n {
		p, err := newProc(ctx, dsn, srv.URL, cfg, conc, local)
		if err != nil {
			for _, p := range ps {
				p.close()
			}
			return 0, 0, []error{err}
		}
		ps = append(ps, p)
	}
	dctx, cancel := context.WithCancel(ctx)
	dDone := make(chan struct{})
	go func() { defer close(dDone); during(dctx, ps) }()
	var failed atomic.Int64
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i, p := range ps {
		wg.Add(1)
		pctx, kill := context.WithCancel(ctx)
		p.kill = kill
		go func() {
			defer wg.Done()
			defer kill()
			errs[i] = p.enrich(pctx, itemsFrom(i*per, per), conc, batchSize, &failed)
			errs[i] = errors.Join(errs[i], p.close())
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	cancel()
	<-dDone
	return wall, int(failed.Load()), errs
}

func nothing(context.Context, []*proc) {}

// fleet30: 3 processes under a shared budget of 30 vs one at 30.
func fleet30(rounds, batchSize int, dsn string) error {
	const k, n, latency = 30, 60000, 5 * time.Millisecond
	type fr struct {
		wall        time.Duration
		failed      int
		ok, tooMany int64
	}
	res := map[string][]fr{}
	names := []string{"one-fixed-30", "three-budget-30"}
	for r := range rounds {
		for i := range names {
			name := names[(i+r)%len(names)]
			api := admitapi.New(k, latency)
			var got fr
			if name == "one-fixed-30" {
				x, err := run(api, contender{name, 30, false}, n, batchSize, nil)
				if err != nil {
					return err
				}
				got = fr{wall: x.wall, failed: x.failed, ok: x.ok, tooMany: x.tooMany}
			} else {
				cfg := sqlbatch.BudgetConfig{Name: fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), r), MaxConcurrency: 30}
				wall, failed, errs := runFleet(dsn, api, cfg, n/3, 30, batchSize, nothing)
				if err := errors.Join(errs...); err != nil {
					return err
				}
				got = fr{wall: wall, failed: failed}
				got.ok, got.tooMany, _ = api.Counts()
			}
			res[name] = append(res[name], got)
			fmt.Printf("round %d %-16s wall %-8v failed %-4d ok %-6d 429 %-5d (%.2f%%)\n", r+1, name,
				got.wall.Round(time.Millisecond), got.failed, got.ok, got.tooMany, pct(got.tooMany, got.ok+got.tooMany))
		}
	}
	fmt.Printf("\nK=%d, %d items, %v per request, batch size %d, %d rounds; medians:\n", k, n, latency, batchSize, rounds)
	base := res["one-fixed-30"]
	for _, name := range names {
		rs := res[name]
		var walls, ratios, fails, shares []float64
		for i, x := range rs {
			walls = append(walls, x.wall.Seconds())
			ratios = append(ratios, x.wall.Seconds()/base[i].wall.Seconds())
			fails = append(fails, float64(x.failed))
			shares = append(shares, pct(x.tooMany, x.ok+x.tooMany))
		}
		fmt.Printf("%-16s wall %.3fs (median of per-round ratios to one-fixed-30 %.2f×, worst %.2f×)  failed %g  429s %.2f%% of requests\n",
			name, med(walls), med(ratios), slices.Max(ratios), med(fails), med(shares))
	}
	return nil
}

// arrivals records the arrival time of every request before h serves it.
type arrivals struct {
	h  http.Handler
	mu sync.Mutex
	at []time.Time
}

func (a *arrivals) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.at = append(a.at, time.Now())
	a.mu.Unlock()
	a.h.ServeHTTP(w, r)
}

// maxWindow returns the most arrivals in any window of d.
func maxWindow(at []time.Time, d time.Duration) int {
	at = slices.Clone(at)
	sort.Slice(at, func(i, j int) bool { return at[i].Before(at[j]) })
	worst, j := 0, 0
	for i := range at {
		for !at[j].After(at[i].Add(-d)) {
			j++
		}
		worst = max(worst, i-j+1)
	}
	return worst
}

// fleetRate: a shared rate of 300/s over 3 processes.
func fleetRate(rounds, batchSize int, dsn string) error {
	const rate, per, latency = 300.0, 1000, 5 * time.Millisecond
	var worst []float64
	for r := range rounds {
		a := &arrivals{h: admitapi.New(1000, latency)}
		cfg := sqlbatch.BudgetConfig{Name: fmt.Sprintf("bench-rate-%d-%d", time.Now().UnixNano(), r), Rate: rate}
		wall, failed, errs := runFleet(dsn, a, cfg, per, 30, batchSize, nothing)
		if err := errors.Join(errs...); err != nil {
			return err
		}
		w := maxWindow(a.at, time.Second)
		worst = append(worst, float64(w))
		fmt.Printf("round %d wall %-8v failed %d requests %d: most in a 1-s window %d (%.3f× the rate); mean rate %.1f/s\n", r+1,
			wall.Round(time.Millisecond), failed, len(a.at), w, float64(w)/rate, float64(len(a.at))/wall.Seconds())
	}
	fmt.Printf("\nshared rate %v/s over 3 processes of %d items, %d rounds: most requests in a 1-s window, median %g, worst %g (%.3f× the rate)\n",
		rate, per, rounds, med(worst), slices.Max(worst), slices.Max(worst)/rate)
	return nil
}

// fleetKill: one process stops renewing at 3 s; how long until the
// others' shares add up to the budget again.
func fleetKill(rounds, batchSize int, dsn string) error {
	const k, per, latency, at = 30, 20000, 5 * time.Millisecond, 3 * time.Second
	var took []float64
	for r := range rounds {
		api := admitapi.New(k, latency)
		cfg := sqlbatch.BudgetConfig{Name: fmt.Sprintf("bench-kill-%d-%d", time.Now().UnixNano(), r), MaxConcurrency: k}
		var kill killWatch
		wall, _, errs := runFleet(dsn, api, cfg, per, 30, batchSize, func(ctx context.Context, ps []*proc) {
			kill.run(ctx, ps, at, k)
		})
		if err := errors.Join(errs[:2]...); err != nil { // the killed one's run was cancelled
			return err
		}
		took = append(took, kill.grew.Seconds())
		fmt.Printf("round %d shares before %v; the two others' shares added up to %d again %v after the kill (wall %v)\n",
			r+1, kill.before, k, kill.grew.Round(10*time.Millisecond), wall.Round(time.Millisecond))
	}
	fmt.Printf("\none of 3 processes killed at %v (budget of %d, default LeaseTTL 5s), %d rounds: others' shares whole again after median %.2fs, worst %.2fs\n",
		at, k, rounds, med(took), slices.Max(took))
	return nil
}

// killWatch is one kill of a fleet round: at `at`, the shares of the
// three processes are noted, the third is "killed" (its pool closes: its
// renewals fail and its lease is left to expire; its items stay undone),
// and grew is how long until the two others' shares add up to total
// again (-1 if never); limit is then the first one's fleet limit.
type killWatch struct {
	before []int
	grew   time.Duration
	limit  int
}

// run does it; it returns when the shares are whole again or ctx ended.
func (w *killWatch) run(ctx context.Context, ps []*proc, at time.Duration, total int) {
	w.grew = -1
	select {
	case <-ctx.Done():
		return
	case <-time.After(at):
	}
	for _, p := range ps {
		w.before = append(w.before, p.budget.Share().Concurrency)
	}
	ps[2].kill()
	ps[2].db.Close()
	killed := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		a, b := ps[0].budget.Share(), ps[1].budget.Share()
		if a.Concurrency+b.Concurrency == total {
			w.grew, w.limit = time.Since(killed), a.Limit
			return
		}
	}
}

func med(v []float64) float64 {
	v = slices.Clone(v)
	slices.Sort(v)
	if len(v) == 0 {
		return 0
	}
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}
