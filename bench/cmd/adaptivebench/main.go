// Command adaptivebench measures httpenrich's Config.Adaptive (issue 14)
// against an API that admits K requests at once and answers 429 beyond
// (internal/admitapi), with an in-memory Source and Sink, so that only the
// HTTP side counts. Contenders alternate round by round; medians are
// printed.
//
// Scenarios:
//
//	k20     K = 20, 5000 items, 5 ms per request: fixed concurrency 20 (the
//	        hand-tuned optimum), fixed 100 (today's guess), adaptive with a
//	        ceiling of 100. Wall time, failed items, share of 429s.
//	step    K = 20, then 60 from 2 s on; adaptive, ceiling 100: how long
//	        the limit takes to follow (to reach 0.9 × 60, the bottom of
//	        AIMD's oscillation).
//	outage  K = 100, ceiling 50, every request answered 503 with
//	        Retry-After: 2 from 1 s to 4 s: requests sent during the
//	        outage per Retry-After window, failed items; fixed 50 vs
//	        adaptive.
//
//	retryafter  K = 20 whose 429s carry Retry-After: 1, 50,000 items, 5 ms
//	        per request: fixed 20 vs adaptive (ceiling 100). Wall time,
//	        failed items, share of 429s (issue 23).
//	failing K = 30, 429 beyond; the ids divisible by 100 answer 503 on
//	        every attempt, those 50 above a multiple of 200 404; 40,000
//	        items, 5 ms: fixed 30 vs adaptive (ceiling 100). Wall time,
//	        items failed by 429 and by 503/404, the limit once capacity
//	        was found (its lowest after the first time it reached 0.8 ×
//	        30) and at the end (issue 23).
//
// fleet30, fleetrate and fleetkill measure the budget shared among
// processes (issue 23; see fleet.go), fleetadaptive, fleetstep,
// fleetoutage and fleetkilladaptive its adaptive limit
// (see fleetadaptive.go), on PostgreSQL (-dsn).
//
//	go run ./cmd/adaptivebench -scenario k20 -rounds 5
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/batchenrichtest"
	"github.com/batchenrich/batchenrich/bench/internal/admitapi"
	"github.com/batchenrich/batchenrich/httpenrich"
)

type item int

// enricher is the Enricher every scenario runs.
type enricher = httpenrich.Enricher[item, json.RawMessage, json.RawMessage]

func (i item) Key() string { return strconv.Itoa(int(i)) }

// contender is one way to configure the job.
type contender struct {
	name        string
	concurrency int
	adaptive    bool
}

// result is one run's figures.
type result struct {
	wall                time.Duration
	failed              int
	ok, tooMany, outage int64
	limit               int                         // the host's limit at the end (adaptive)
	limits              []batchenrich.UpstreamLimit // Report.Limits
	failedBy            map[int]int                 // failed items by their last status (0: no response)
	found               bool                        // failing: the limit reached 0.8 × K
	minAfter            int                         // failing: the lowest limit after that
	followed            time.Duration               // step: from the change of K to the limit at 0.9 × K
	windows             []int                       // outage: 503s per Retry-After window
	reasons             map[string]int              // limit changes by reason
}

func main() {
	scenario := flag.String("scenario", "k20", "k20, step, outage, retryafter, failing, fleet30, fleetrate, fleetkill, fleetadaptive, fleetstep, fleetoutage or fleetkilladaptive")
	dsn := flag.String("dsn", "", "PostgreSQL URL for the fleet scenarios' shared budget (default $DATABASE_URL)")
	rounds := flag.Int("rounds", 5, "rounds (each runs every contender once, order rotated)")
	batchSize := flag.Int("batch-size", 1000, "Runner batch size")
	flag.Parse()
	var err error
	if strings.HasPrefix(*scenario, "fleet") {
		if *dsn, err = dsnOf(*dsn); err != nil {
			fmt.Fprintln(os.Stderr, "adaptivebench:", err)
			os.Exit(2)
		}
	}
	switch *scenario {
	case "k20":
		err = k20(*rounds, *batchSize)
	case "step":
		err = step(*rounds, *batchSize)
	case "outage":
		err = outage(*rounds, *batchSize)
	case "retryafter":
		err = retryAfter(*rounds, *batchSize)
	case "failing":
		err = failing(*rounds, *batchSize)
	case "fleet30":
		err = fleet30(*rounds, *batchSize, *dsn)
	case "fleetrate":
		err = fleetRate(*rounds, *batchSize, *dsn)
	case "fleetkill":
		err = fleetKill(*rounds, *batchSize, *dsn)
	case "fleetadaptive":
		err = fleetAdaptive(*rounds, *batchSize, *dsn)
	case "fleetstep":
		err = fleetStep(*rounds, *batchSize, *dsn)
	case "fleetoutage":
		err = fleetOutage(*rounds, *batchSize, *dsn)
	case "fleetkilladaptive":
		err = fleetKillAdaptive(*rounds, *batchSize, *dsn)
	default:
		err = fmt.Errorf("unknown -scenario %q", *scenario)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "adaptivebench:", err)
		os.Exit(1)
	}
}

// run enriches n items against api with c, calling during(ctx, e) in the
// background while it runs.
func run(api *admitapi.Server, c contender, n, batchSize int, during func(context.Context, *httpenrich.Enricher[item, json.RawMessage, json.RawMessage])) (result, error) {
	srv := httptest.NewServer(api)
	defer srv.Close()
	cfg := httpenrich.Config[item, json.RawMessage, json.RawMessage]{
		URL: srv.URL + "/items/{id}",
		Request: func(i item) (httpenrich.Params, error) {
			return httpenrich.Params{Path: map[string]string{"id": strconv.Itoa(int(i))}}, nil
		},
		Pool: httpenrich.Pool{}.ForConcurrency(c.concurrency),
	}
	if c.adaptive {
		cfg.Adaptive = &httpenrich.Adaptive{MaxConcurrency: c.concurrency}
	}
	e, err := httpenrich.New(cfg)
	if err != nil {
		return result{}, err
	}
	defer e.Close()
	items := make([]item, n)
	for i := range items {
		items[i] = item(i + 1)
	}
	var failed atomic.Int64
	failedBy := map[int]int{}
	sink := batchenrich.SinkFunc[item, json.RawMessage](func(_ context.Context, b batchenrich.Batch[item, json.RawMessage]) error {
		failed.Add(int64(b.Failed()))
		for _, r := range b.Results {
			var he *httpenrich.Error
			if errors.As(r.Err, &he) {
				failedBy[he.Status]++
			} else if r.Err != nil {
				failedBy[-1]++
			}
		}
		return nil
	})
	lt := &limitTracer{reasons: map[string]int{}, trace: os.Getenv("ADAPTIVEBENCH_TRACE") != "", began: time.Now()}
	r, err := batchenrich.New(batchenrichtest.NewSliceSource(items), e, sink,
		batchenrich.Options{BatchSize: batchSize, Concurrency: c.concurrency, Tracer: lt})
	if err != nil {
		return result{}, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	if during != nil {
		go func() { defer close(done); during(ctx, e) }()
	} else {
		close(done)
	}
	start := time.Now()
	rep, err := r.Run(context.Background())
	wall := time.Since(start)
	cancel()
	<-done
	if err != nil {
		return result{}, err
	}
	res := result{wall: wall, failed: int(failed.Load()), limits: rep.Limits, reasons: lt.byReason(), failedBy: failedBy}
	res.ok, res.tooMany, res.outage = api.Counts()
	u, _ := url.Parse(srv.URL)
	res.limit = e.Limits()[u.Host]
	return res, nil
}

func k20(rounds, batchSize int) error {
	const k, n, latency = 20, 5000, 5 * time.Millisecond
	cs := []contender{{"fixed-20", 20, false}, {"fixed-100", 100, false}, {"adaptive-100", 100, true}}
	res := map[string][]result{}
	for r := range rounds {
		for i := range cs {
			c := cs[(i+r)%len(cs)]
			got, err := run(admitapi.New(k, latency), c, n, batchSize, nil)
			if err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			res[c.name] = append(res[c.name], got)
			fmt.Printf("round %d %-13s wall %-8v failed %-4d ok %-5d 429 %-5d (%.1f%%) limit %d %+v\n", r+1, c.name,
				got.wall.Round(time.Millisecond), got.failed, got.ok, got.tooMany, pct(got.tooMany, got.ok+got.tooMany), got.limit, got.limits)
			fmt.Println("   ", got.reasons)
		}
	}
	fmt.Printf("\nK=%d, %d items, %v per request, batch size %d, %d rounds; medians:\n", k, n, latency, batchSize, rounds)
	base := median(res["fixed-20"], func(r result) float64 { return r.wall.Seconds() })
	for _, c := range cs {
		rs := res[c.name]
		w := median(rs, func(r result) float64 { return r.wall.Seconds() })
		ratios := make([]result, len(rs)) // per round, against that round's fixed-20
		for i := range rs {
			ratios[i].wall = time.Duration(float64(time.Second) * rs[i].wall.Seconds() / res["fixed-20"][i].wall.Seconds())
		}
		fmt.Printf("%-13s wall %.3fs (%.2f× fixed-20's median; median of per-round ratios %.2f×)  failed %g  429s %.1f%% of requests\n",
			c.name, w, w/base, median(ratios, func(r result) float64 { return r.wall.Seconds() }),
			median(rs, func(r result) float64 { return float64(r.failed) }),
			median(rs, func(r result) float64 { return pct(r.tooMany, r.ok+r.tooMany) }))
	}
	return nil
}

func step(rounds, batchSize int) error {
	const k0, k1, n, latency = 20, 60, 40000, 5 * time.Millisecond
	const at = 2 * time.Second
	c := contender{"adaptive-100", 100, true}
	var rs []result
	for r := range rounds {
		api := admitapi.New(k0, latency)
		var followed time.Duration = -1
		var minAfter, maxAfter atomic.Int64
		got, err := run(api, c, n, batchSize, func(ctx context.Context, e *httpenrich.Enricher[item, json.RawMessage, json.RawMessage]) {
			limit := func() int {
				for _, l := range e.Limits() {
					return l
				}
				return 0
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(at):
			}
			api.SetK(k1)
			changed := time.Now()
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			minAfter.Store(1 << 30)
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				l := int64(limit())
				if followed < 0 && l*10 >= k1*9 {
					followed = time.Since(changed)
				}
				if followed >= 0 {
					minAfter.Store(min(minAfter.Load(), l))
					maxAfter.Store(max(maxAfter.Load(), l))
				}
			}
		})
		if err != nil {
			return err
		}
		got.followed = followed
		rs = append(rs, got)
		fmt.Printf("round %d wall %v failed %d 429 %d (%.1f%%) limit followed K %d→%d in %v; limit after: %d..%d, at the end %d\n", r+1,
			got.wall.Round(time.Millisecond), got.failed, got.tooMany, pct(got.tooMany, got.ok+got.tooMany), k0, k1,
			followed.Round(time.Millisecond), minAfter.Load(), maxAfter.Load(), got.limit)
	}
	fmt.Printf("\nK %d→%d at %v, %d items, %v per request, ceiling 100, batch size %d, %d rounds; median time for the limit to reach %d: %.3fs (max %.3fs)\n",
		k0, k1, at, n, latency, batchSize, rounds, k1*9/10,
		median(rs, func(r result) float64 { return r.followed.Seconds() }),
		slices.Max(values(rs, func(r result) float64 { return r.followed.Seconds() })))
	return nil
}

func outage(rounds, batchSize int) error {
	const k, n, latency, retryAfter = 100, 20000, 5 * time.Millisecond, 2
	const from, length = time.Second, 3 * time.Second
	cs := []contender{{"fixed-50", 50, false}, {"adaptive-50", 50, true}}
	res := map[string][]result{}
	for r := range rounds {
		for i := range cs {
			c := cs[(i+r)%len(cs)]
			api := admitapi.New(k, latency)
			var began time.Time
			got, err := run(api, c, n, batchSize, func(ctx context.Context, _ *httpenrich.Enricher[item, json.RawMessage, json.RawMessage]) {
				select {
				case <-ctx.Done():
				case <-time.After(from):
					began = time.Now()
					api.Outage(length, retryAfter)
				}
			})
			if err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			got.windows = make([]int, int(length/(retryAfter*time.Second))+1)
			for _, t := range api.OutageHits() {
				got.windows[int(t.Sub(began)/(retryAfter*time.Second))]++
			}
			res[c.name] = append(res[c.name], got)
			fmt.Printf("round %d %-12s wall %-8v failed %-4d 503s %-5d per %ds window %v limit %d %+v\n", r+1, c.name,
				got.wall.Round(time.Millisecond), got.failed, got.outage, retryAfter, got.windows, got.limit, got.limits)
		}
	}
	fmt.Printf("\noutage of %v (503, Retry-After: %d) from %v, K=%d, %d items, %v per request, batch size %d, %d rounds; medians:\n",
		length, retryAfter, from, k, n, latency, batchSize, rounds)
	for _, c := range cs {
		rs := res[c.name]
		fmt.Printf("%-12s failed %g  503s %g  (first window %g, each later one %g)  wall %.3fs\n", c.name,
			median(rs, func(r result) float64 { return float64(r.failed) }),
			median(rs, func(r result) float64 { return float64(r.outage) }),
			median(rs, func(r result) float64 { return float64(r.windows[0]) }),
			median(rs, func(r result) float64 { return float64(slices.Max(r.windows[1:])) }),
			median(rs, func(r result) float64 { return r.wall.Seconds() }))
	}
	return nil
}

// retryAfter: K = 20 whose 429s carry Retry-After: 1.
func retryAfter(rounds, batchSize int) error {
	const k, n, latency = 20, 50000, 5 * time.Millisecond
	cs := []contender{{"fixed-20", 20, false}, {"adaptive-100", 100, true}}
	res := map[string][]result{}
	for r := range rounds {
		for i := range cs {
			c := cs[(i+r)%len(cs)]
			api := admitapi.New(k, latency)
			api.RetryAfter429(1)
			began := time.Now()
			got, err := run(api, c, n, batchSize, nil)
			if err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			var at []string // when the 429s came, from the start
			for _, t := range api.TooManyHits() {
				at = append(at, t.Sub(began).Round(10*time.Millisecond).String())
			}
			if len(at) > 0 {
				fmt.Printf("    429s at %v\n", at)
			}
			res[c.name] = append(res[c.name], got)
			fmt.Printf("round %d %-13s wall %-8v failed %-4d ok %-6d 429 %-5d (%.2f%%) limit %d %+v %v\n", r+1, c.name,
				got.wall.Round(time.Millisecond), got.failed, got.ok, got.tooMany, pct(got.tooMany, got.ok+got.tooMany), got.limit, got.limits, got.reasons)
		}
	}
	fmt.Printf("\nK=%d, 429s with Retry-After: 1, %d items, %v per request, batch size %d, %d rounds; medians:\n", k, n, latency, batchSize, rounds)
	summarize(cs, res, "fixed-20")
	return nil
}

// failing: K = 30, 1 % of the ids 503 on every attempt, 0.5 % 404.
func failing(rounds, batchSize int) error {
	const k, n, latency = 30, 40000, 5 * time.Millisecond
	const every503, every404 = 100, 200
	cs := []contender{{"fixed-30", 30, false}, {"adaptive-100", 100, true}}
	res := map[string][]result{}
	for r := range rounds {
		for i := range cs {
			c := cs[(i+r)%len(cs)]
			api := admitapi.New(k, latency)
			api.FailIDs(every503, every404)
			var found atomic.Bool
			var minAfter atomic.Int64
			minAfter.Store(1 << 30)
			got, err := run(api, c, n, batchSize, func(ctx context.Context, e *httpenrich.Enricher[item, json.RawMessage, json.RawMessage]) {
				if !c.adaptive {
					return
				}
				tick := time.NewTicker(5 * time.Millisecond)
				defer tick.Stop()
				for {
					select {
					case <-ctx.Done():
						return
					case <-tick.C:
					}
					for _, l := range e.Limits() {
						if l*10 >= k*8 {
							found.Store(true)
						}
						if found.Load() {
							minAfter.Store(min(minAfter.Load(), int64(l)))
						}
					}
				}
			})
			if err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			got.found, got.minAfter = found.Load(), int(minAfter.Load())
			res[c.name] = append(res[c.name], got)
			fmt.Printf("round %d %-13s wall %-8v failed %v ok %-6d 429 %-5d (%.2f%%) 503/404 answered %d", r+1, c.name,
				got.wall.Round(time.Millisecond), got.failedBy, got.ok, got.tooMany, pct(got.tooMany, got.ok+got.tooMany), api.Failed())
			if c.adaptive {
				fmt.Printf(" limit: found capacity %v, lowest after %d, at the end %d %+v %v", got.found, got.minAfter, got.limit, got.limits, got.reasons)
			}
			fmt.Println()
		}
	}
	want503 := n / every503
	want404 := 0
	for id := 1; id <= n; id++ {
		if id%every503 != 0 && id%every404 == every404/4 {
			want404++
		}
	}
	fmt.Printf("\nK=%d, ids %% %d answer 503 and %% %d 404 on every attempt (%d and %d items), %d items, %v per request, batch size %d, %d rounds; medians:\n",
		k, every503, every404, want503, want404, n, latency, batchSize, rounds)
	summarize(cs, res, "fixed-30")
	for _, c := range cs {
		rs := res[c.name]
		fmt.Printf("%-13s items failed by 503 %g, by 404 %g, by 429 %g", c.name,
			median(rs, func(r result) float64 { return float64(r.failedBy[503]) }),
			median(rs, func(r result) float64 { return float64(r.failedBy[404]) }),
			median(rs, func(r result) float64 { return float64(r.failedBy[429]) }))
		if c.adaptive {
			fmt.Printf("; limit after finding capacity: lowest %g (worst round %g), at the end %g",
				median(rs, func(r result) float64 { return float64(r.minAfter) }),
				slices.Min(values(rs, func(r result) float64 { return float64(r.minAfter) })),
				median(rs, func(r result) float64 { return float64(r.limit) }))
		}
		fmt.Println()
	}
	return nil
}

// summarize prints each contender's median wall time and its ratio to
// base's, failed items and share of 429s.
func summarize(cs []contender, res map[string][]result, base string) {
	b := median(res[base], func(r result) float64 { return r.wall.Seconds() })
	for _, c := range cs {
		rs := res[c.name]
		w := median(rs, func(r result) float64 { return r.wall.Seconds() })
		ratios := make([]result, len(rs)) // per round, against that round's base
		for i := range rs {
			ratios[i].wall = time.Duration(float64(time.Second) * rs[i].wall.Seconds() / res[base][i].wall.Seconds())
		}
		fmt.Printf("%-13s wall %.3fs (%.2f× %s's median; median of per-round ratios %.2f×, worst %.2f×)  failed %g  429s %.2f%% of requests\n",
			c.name, w, w/b, base, median(ratios, func(r result) float64 { return r.wall.Seconds() }),
			slices.Max(values(ratios, func(r result) float64 { return r.wall.Seconds() })),
			median(rs, func(r result) float64 { return float64(r.failed) }),
			median(rs, func(r result) float64 { return pct(r.tooMany, r.ok+r.tooMany) }))
	}
}

func pct(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}

func values(rs []result, f func(result) float64) []float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	return v
}

func median(rs []result, f func(result) float64) float64 {
	v := values(rs, f)
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// limitTracer counts the Enricher's limit changes by reason (and prints
// each with ADAPTIVEBENCH_TRACE set); its other Tracer methods do nothing.
// TraceLimitChange is called from the enriching goroutines, hence the lock.
type limitTracer struct {
	trace  bool
	began  time.Time
	prefix string // printed before each change

	mu      sync.Mutex
	reasons map[string]int
}

func (t *limitTracer) TraceLimitChange(_ context.Context, c batchenrich.UpstreamLimit) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.reasons[c.Reason]++
	if t.trace {
		fmt.Printf("    %s%v %d → %d %s\n", t.prefix, time.Since(t.began).Round(time.Millisecond), c.From, c.To, c.Reason)
	}
}

// byReason returns the counts so far.
func (t *limitTracer) byReason() map[string]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return maps.Clone(t.reasons)
}

func (*limitTracer) TraceRunStart(ctx context.Context, _ batchenrich.TraceRun) context.Context {
	return ctx
}
func (*limitTracer) TraceRunEnd(context.Context, batchenrich.TraceRun) {}
func (*limitTracer) TraceBatchStart(ctx context.Context, _ batchenrich.TraceBatch) context.Context {
	return ctx
}
func (*limitTracer) TraceBatchEnd(context.Context, batchenrich.TraceBatch) {}
func (*limitTracer) TraceItemStart(ctx context.Context, _ batchenrich.TraceItem) context.Context {
	return ctx
}
func (*limitTracer) TraceItemEnd(context.Context, batchenrich.TraceItem) {}
func (*limitTracer) TraceStageStart(ctx context.Context, _ batchenrich.TraceStage) context.Context {
	return ctx
}
func (*limitTracer) TraceStageEnd(context.Context, batchenrich.TraceStage) {}
