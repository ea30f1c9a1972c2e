package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/batchenrich/batchenrich/bench/internal/admitapi"
	"github.com/batchenrich/batchenrich/sqlbatch"
)

// The scenarios of the adaptive limit shared by a fleet
// (sqlbatch.BudgetConfig.Adaptive), 3 "processes" as in fleet.go, each
// Enricher with Config.Adaptive (ceiling 100, or 50 in fleetoutage):
//
//	fleetadaptive K = 30, 60,000 items, 5 ms: one process at a fixed 30
//	          over every item, vs 3 processes of 20,000 items each under an
//	          adaptive budget with a ceiling of 100 ("shared"), vs the same
//	          3 with a budget of 100 that does not adapt, each process's
//	          limit adapting alone ("alone"). Wall time, failed items,
//	          share of 429s, the fleet's limit from 2 s on.
//	fleetstep 3 processes of 60,000 items under an adaptive budget
//	          (ceiling 100); K = 30, 60 from 3 s on, 30 again from 7 s
//	          on: how long the fleet's limit takes to reach 0.9 × 60 after
//	          the rise and to come back to 30 or below after the fall.
//	fleetoutage K = 100, 3 processes of 7,000 items, ceiling 50 (shared
//	          or alone as in fleetadaptive), every request answered 503
//	          with Retry-After: 2 from 1 s to 4 s: the requests sent
//	          during the outage per Retry-After window, failed items.
//	fleetkilladaptive 3 processes of 40,000 items at K = 30 under an
//	          adaptive budget (ceiling 100); at 3 s one stops renewing (as
//	          fleetkill) and the time until the two others' shares add up
//	          to the ceiling again is measured.

// limitSampler records the fleet's limit (as the first process saw it at
// its last renewal) over time.
type limitSampler struct {
	mu     sync.Mutex
	began  time.Time
	at     []time.Duration
	limits []int
}

func (s *limitSampler) run(ctx context.Context, ps []*proc) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		l := ps[0].budget.Share().Limit
		s.mu.Lock()
		s.at = append(s.at, time.Since(s.began))
		s.limits = append(s.limits, l)
		s.mu.Unlock()
	}
}

// rangeFrom returns the lowest and highest limit sampled from d on.
func (s *limitSampler) rangeFrom(d time.Duration) (lo, hi int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	lo, hi = 1<<30, 0
	for i, at := range s.at {
		if at >= d {
			lo, hi = min(lo, s.limits[i]), max(hi, s.limits[i])
		}
	}
	return lo, hi
}

// firstFrom returns how long after d the limit first satisfied ok, -1 if
// never.
func (s *limitSampler) firstFrom(d time.Duration, ok func(int) bool) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, at := range s.at {
		if at >= d && ok(s.limits[i]) {
			return at - d
		}
	}
	return -1
}

func budgetName(what string, r int) string {
	return fmt.Sprintf("bench-%s-%d-%d", what, time.Now().UnixNano(), r)
}

// fleetAdaptive: 3 processes under a shared adaptive limit vs one at 30.
func fleetAdaptive(rounds, batchSize int, dsn string) error {
	const k, n, latency = 30, 60000, 5 * time.Millisecond
	type fr struct {
		wall        time.Duration
		failed      int
		ok, tooMany int64
		lo, hi      int
	}
	res := map[string][]fr{}
	names := []string{"one-fixed-30", "three-shared", "three-alone"}
	for r := range rounds {
		for i := range names {
			name := names[(i+r)%len(names)]
			api := admitapi.New(k, latency)
			var got fr
			switch name {
			case "one-fixed-30":
				x, err := run(api, contender{name, 30, false}, n, batchSize, nil)
				if err != nil {
					return err
				}
				got = fr{wall: x.wall, failed: x.failed, ok: x.ok, tooMany: x.tooMany}
			default:
				shared := name == "three-shared"
				cfg := sqlbatch.BudgetConfig{Name: budgetName("adaptive", r), MaxConcurrency: 100, Adaptive: shared}
				if !shared {
					cfg.MaxConcurrency = 300 // never the bound
				}
				s := &limitSampler{began: time.Now()}
				wall, failed, errs := runFleetN(3, dsn, api, cfg, n/3, 100, batchSize, !shared, s.run)
				if err := errors.Join(errs...); err != nil {
					return err
				}
				got = fr{wall: wall, failed: failed}
				got.ok, got.tooMany, _ = api.Counts()
				got.lo, got.hi = s.rangeFrom(2 * time.Second)
			}
			res[name] = append(res[name], got)
			fmt.Printf("round %d %-13s wall %-8v failed %-4d ok %-6d 429 %-5d (%.2f%%)", r+1, name,
				got.wall.Round(time.Millisecond), got.failed, got.ok, got.tooMany, pct(got.tooMany, got.ok+got.tooMany))
			if name == "three-shared" {
				fmt.Printf(" fleet limit from 2 s on: %d..%d", got.lo, got.hi)
			}
			fmt.Println()
		}
	}
	fmt.Printf("\nK=%d, %d items, %v per request, batch size %d, %d rounds; medians:\n", k, n, latency, batchSize, rounds)
	base := res["one-fixed-30"]
	for _, name := range names {
		rs := res[name]
		var walls, ratios, fails, shares, los, his []float64
		for i, x := range rs {
			walls = append(walls, x.wall.Seconds())
			ratios = append(ratios, x.wall.Seconds()/base[i].wall.Seconds())
			fails = append(fails, float64(x.failed))
			shares = append(shares, pct(x.tooMany, x.ok+x.tooMany))
			los, his = append(los, float64(x.lo)), append(his, float64(x.hi))
		}
		fmt.Printf("%-13s wall %.3fs (per-round ratio to one-fixed-30: median %.2f×, %.2f–%.2f×)  failed %g  429s %.2f%% of requests (%.2f–%.2f%%)",
			name, med(walls), med(ratios), slices.Min(ratios), slices.Max(ratios), med(fails), med(shares), slices.Min(shares), slices.Max(shares))
		if name == "three-shared" {
			fmt.Printf("  fleet limit from 2 s on: lowest %g (worst %g), highest %g (worst %g)", med(los), slices.Min(los), med(his), slices.Max(his))
		}
		fmt.Println()
	}
	return nil
}

// fleetStep: K 30 → 60 → 30 under a shared adaptive limit.
func fleetStep(rounds, batchSize int, dsn string) error {
	const k0, k1, per, latency = 30, 60, 60000, 5 * time.Millisecond
	const up, down = 3 * time.Second, 7 * time.Second
	var ups, downs, shares []float64
	for r := range rounds {
		api := admitapi.New(k0, latency)
		s := &limitSampler{began: time.Now()}
		cfg := sqlbatch.BudgetConfig{Name: budgetName("step", r), MaxConcurrency: 100, Adaptive: true}
		wall, failed, errs := runFleetN(3, dsn, api, cfg, per, 100, batchSize, false, func(ctx context.Context, ps []*proc) {
			go func() {
				for _, at := range []struct {
					d time.Duration
					k int
				}{{up, k1}, {down, k0}} {
					select {
					case <-ctx.Done():
						return
					case <-time.After(at.d - time.Since(s.began)):
					}
					api.SetK(at.k)
				}
			}()
			s.run(ctx, ps)
		})
		if err := errors.Join(errs...); err != nil {
			return err
		}
		ok, tooMany, _ := api.Counts()
		u := s.firstFrom(up, func(l int) bool { return l*10 >= k1*9 })
		d := s.firstFrom(down, func(l int) bool { return l <= k0 })
		lo, hi := s.rangeFrom(down + 2*time.Second)
		ups, downs = append(ups, u.Seconds()), append(downs, d.Seconds())
		shares = append(shares, pct(tooMany, ok+tooMany))
		fmt.Printf("round %d wall %v failed %d 429 %d (%.2f%%): limit reached %d %v after K %d→%d, came to <= %d %v after K %d→%d (then %d..%d)\n",
			r+1, wall.Round(time.Millisecond), failed, tooMany, pct(tooMany, ok+tooMany), k1*9/10, u.Round(10*time.Millisecond),
			k0, k1, k0, d.Round(10*time.Millisecond), k1, k0, lo, hi)
	}
	fmt.Printf("\nK %d→%d at %v, →%d at %v; 3 processes of %d items, %v per request, ceiling 100, %d rounds: limit at %d after median %.2fs (worst %.2fs), back to <= %d after median %.2fs (worst %.2fs); 429s median %.2f%%\n",
		k0, k1, up, k0, down, per, latency, rounds, k1*9/10, med(ups), slices.Max(ups), k0, med(downs), slices.Max(downs), med(shares))
	return nil
}

// fleetOutage: an outage of 3 s (503, Retry-After: 2) against 3
// processes, sharing the adaptive limit or each adapting alone, and one
// process alone as the reference.
func fleetOutage(rounds, batchSize int, dsn string) error {
	const k, per, latency, retryAfter = 100, 7000, 5 * time.Millisecond, 2
	const from, length = time.Second, 3 * time.Second
	names := []string{"one-adaptive", "three-shared", "three-alone"}
	type fr struct {
		failed  int
		outage  int64
		windows []int
		wall    time.Duration
	}
	res := map[string][]fr{}
	for r := range rounds {
		for i := range names {
			name := names[(i+r)%len(names)]
			api := admitapi.New(k, latency)
			var began time.Time
			startOutage := func(ctx context.Context) {
				select {
				case <-ctx.Done():
				case <-time.After(from):
					began = time.Now()
					api.Outage(length, retryAfter)
				}
			}
			var got fr
			if name == "one-adaptive" {
				x, err := run(api, contender{name, 50, true}, 3*per, batchSize, func(ctx context.Context, _ *enricher) { startOutage(ctx) })
				if err != nil {
					return err
				}
				got.failed, got.wall = x.failed, x.wall
			} else {
				shared := name == "three-shared"
				cfg := sqlbatch.BudgetConfig{Name: budgetName("outage", r), MaxConcurrency: 50, Adaptive: shared}
				wall, failed, errs := runFleetN(3, dsn, api, cfg, per, 50, batchSize, !shared, func(ctx context.Context, _ []*proc) { startOutage(ctx) })
				if err := errors.Join(errs...); err != nil {
					return err
				}
				got.failed, got.wall = failed, wall
			}
			_, _, got.outage = api.Counts()
			got.windows = make([]int, int(length/(retryAfter*time.Second))+1)
			for _, t := range api.OutageHits() {
				got.windows[int(t.Sub(began)/(retryAfter*time.Second))]++
			}
			res[name] = append(res[name], got)
			fmt.Printf("round %d %-12s wall %-8v failed %-4d 503s %-5d per %ds window %v\n", r+1, name,
				got.wall.Round(time.Millisecond), got.failed, got.outage, retryAfter, got.windows)
		}
	}
	fmt.Printf("\noutage of %v (503, Retry-After: %d) from %v, K=%d, ceiling 50, 3 processes of %d items (one: %d), %v per request, %d rounds; medians:\n",
		length, retryAfter, from, k, per, 3*per, latency, rounds)
	for _, name := range names {
		rs := res[name]
		var fails, outs, first, later, walls []float64
		for _, x := range rs {
			fails = append(fails, float64(x.failed))
			outs = append(outs, float64(x.outage))
			first = append(first, float64(x.windows[0]))
			later = append(later, float64(slices.Max(x.windows[1:])))
			walls = append(walls, x.wall.Seconds())
		}
		fmt.Printf("%-12s failed %g  503s %g (%g–%g)  first window %g, each later one %g (worst %g)  wall %.3fs\n", name,
			med(fails), med(outs), slices.Min(outs), slices.Max(outs), med(first), med(later), slices.Max(later), med(walls))
	}
	return nil
}

// fleetKillAdaptive: one of 3 processes under an adaptive budget stops
// renewing at 3 s; how long until the others' shares add up to the
// fleet's limit again.
func fleetKillAdaptive(rounds, batchSize int, dsn string) error {
	const k, per, latency, at, ceiling = 30, 40000, 5 * time.Millisecond, 3 * time.Second, 100
	var took []float64
	for r := range rounds {
		api := admitapi.New(k, latency)
		cfg := sqlbatch.BudgetConfig{Name: budgetName("killadaptive", r), MaxConcurrency: ceiling, Adaptive: true}
		var kill killWatch
		wall, _, errs := runFleetN(3, dsn, api, cfg, per, 100, batchSize, false, func(ctx context.Context, ps []*proc) {
			kill.run(ctx, ps, at, ceiling)
		})
		if err := errors.Join(errs[:2]...); err != nil {
			return err
		}
		took = append(took, kill.grew.Seconds())
		fmt.Printf("round %d shares before %v; the two others' shares added up to %d again %v after the kill, fleet limit then %d (wall %v)\n",
			r+1, kill.before, ceiling, kill.grew.Round(10*time.Millisecond), kill.limit, wall.Round(time.Millisecond))
	}
	fmt.Printf("\none of 3 processes killed at %v (adaptive budget, ceiling %d, K=%d, default LeaseTTL 5s), %d rounds: others' shares whole again after median %.2fs, worst %.2fs\n",
		at, ceiling, k, rounds, med(took), slices.Max(took))
	return nil
}
