package batchenrich

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// ConnUser is an optional ability of a Source, Enricher, Sink or
// CheckpointStore that takes connections from a pool while a run works (a
// database's connection pool: sqlbatch's components implement it). Before
// any work — with the Checks, before the run's lock — Run adds up, for
// each pool, the connections its components hold at once, and asks the
// pool (ConnUse.Pool's CheckConns) whether it can give them: a pool too
// small for the run, whose run lock would take the only connection and
// hang the run, say, is refused before the first item is read. A
// NewPartitioned run adds up its partitions' needs, a Replay the locks it
// holds, and Options.RunsAtOnce multiplies a run's.
type ConnUser interface {
	// ConnUse returns what the component takes from each pool during
	// one Run with options o (defaults filled in); nil for nothing.
	ConnUse(o Options) []ConnUse
}

// ConnUse is what one component takes from one pool during one Run, and
// what a pool is asked to give a Run at once.
type ConnUse struct {
	// Pool is the pool; uses are added up per pool, compared with ==.
	// Run then calls its CheckConns once per pool, before any work, with
	// the total the Run needs from it at once (need.Pool the pool,
	// need.Conns the total, need.For what it is made of): CheckConns
	// returns an error naming the limit and the minimum when the pool
	// cannot give need.Conns connections at once. sqlbatch's pool, on a
	// *sql.DB, checks SetMaxOpenConns and, on PostgreSQL, the server's
	// free connections.
	Pool interface {
		CheckConns(ctx context.Context, need ConnUse) error
	}

	// Conns is how many of its connections the component holds at once.
	Conns int

	// Turns marks connections taken for one step of a batch, in turn with
	// the run's other Turns uses of the pool, never at once with them (a
	// batch's write, then its checkpoint's save): per pool and run, the
	// largest of them counts, not their sum. Uses without Turns (a run
	// lock's session, a Source reading ahead while a batch is written)
	// are added to it.
	Turns bool

	// For says what the connections are for, in a few words ("the run
	// lock's session"). In a need, it lists what each run holds, e.g.
	// "1 for the run lock's session, 1 for a batch's transaction", after
	// "4 partitions at once, per partition: " when several runs share the
	// pool, with a Replay's extra locks ("; 4 for the run lock's session
	// (the replayed run and its partitions)").
	For string
}

// connsCheckedKey marks a context whose run's pools were checked for all
// of its partitions at once (by a NewPartitioned run).
type connsCheckedKey struct{}

// connsChecked reports whether ctx's pools were checked already.
func connsChecked(ctx context.Context) bool { return ctx.Value(connsCheckedKey{}) != nil }

// connPool is a ConnUse's pool.
type connPool = interface {
	CheckConns(ctx context.Context, need ConnUse) error
}

// poolNeed is what the runs of one Run need from one pool.
type poolNeed struct {
	pool  connPool
	conns int
	runs  int
	each  []string // what one run holds, as "n for …"
	extra []string // what the whole Run holds beyond its runs
}

// connUses returns the uses of r's components.
func (r *Runner[T, R]) connUses() (uses []ConnUse, err error) {
	for _, c := range [...]any{r.src, r.enr, r.sink, r.opts.store()} {
		if u, ok := c.(ConnUser); ok {
			var got []ConnUse
			if err := guarded(func() error { got = u.ConnUse(r.opts); return nil }); err != nil {
				return nil, err
			}
			uses = append(uses, got...)
		}
	}
	return uses, nil
}

// checkConns asks each pool the runners use whether it can hold them all
// at once, with extra (a Replay's partition locks) on top; it returns the
// first refusal as it is.
func checkConns[T, R any](ctx context.Context, runners []*Runner[T, R], extra []ConnUse) error {
	var order []*poolNeed
	needs := map[connPool]*poolNeed{}
	need := func(p connPool) *poolNeed {
		n := needs[p]
		if n == nil {
			n = &poolNeed{pool: p}
			needs[p] = n
			order = append(order, n)
		}
		return n
	}
	times := 1
	if len(runners) == 1 {
		times = max(runners[0].opts.RunsAtOnce, 1)
	}
	for i, r := range runners {
		uses, err := r.connUses()
		if err != nil {
			return err
		}
		// One run: Turns uses count their largest, the others add up.
		type perPool struct {
			sum, turns int
			turnsFor   string
			each       []string
		}
		run := map[connPool]*perPool{}
		var pools []connPool
		for _, u := range uses {
			if u.Pool == nil || u.Conns <= 0 {
				continue
			}
			pp := run[u.Pool]
			if pp == nil {
				pp = &perPool{}
				run[u.Pool] = pp
				pools = append(pools, u.Pool)
			}
			switch {
			case !u.Turns:
				pp.sum += u.Conns
				pp.each = append(pp.each, strconv.Itoa(u.Conns)+" for "+u.For)
			case u.Conns > pp.turns:
				pp.turns, pp.turnsFor = u.Conns, u.For
			}
		}
		for _, p := range pools {
			pp := run[p]
			n := need(p)
			n.conns += times * (pp.sum + pp.turns)
			n.runs += times
			if i == 0 {
				n.each = pp.each
				if pp.turns > 0 {
					n.each = append(n.each, strconv.Itoa(pp.turns)+" for "+pp.turnsFor)
				}
			}
		}
	}
	for _, u := range extra {
		if u.Pool == nil || u.Conns <= 0 {
			continue
		}
		n := need(u.Pool)
		n.conns += u.Conns
		n.extra = append(n.extra, strconv.Itoa(u.Conns)+" for "+u.For)
	}
	for _, n := range order {
		what := strings.Join(n.each, ", ")
		if n.runs > 1 {
			what = strconv.Itoa(n.runs) + " partitions at once, per partition: " + what
		}
		if len(n.extra) > 0 {
			what = strings.TrimPrefix(what+"; ", "; ") + strings.Join(n.extra, ", ")
		}
		cn := ConnUse{Pool: n.pool, Conns: n.conns, For: what}
		if err := guarded(func() error { return n.pool.CheckConns(ctx, cn) }); err != nil {
			return err
		}
	}
	return nil
}

// checkOwnConns is checkConns for r alone, unless a NewPartitioned run checked
// its pools for all partitions already.
func (r *Runner[T, R]) checkOwnConns(ctx context.Context) error {
	if connsChecked(ctx) {
		return nil
	}
	return checkConns(ctx, []*Runner[T, R]{r}, nil)
}

// lockUses returns the connections the store holds for n run locks
// beyond those a run's own uses count: a Replay's partition locks.
func lockUses(o Options, n int, what string) []ConnUse {
	u, ok := o.store().(ConnUser)
	if !ok || n <= 0 {
		return nil
	}
	var uses, out []ConnUse
	if guarded(func() error { uses = u.ConnUse(o); return nil }) != nil {
		return nil // the run's own check reported the panic
	}
	for _, c := range uses {
		if !c.Turns && c.Conns > 0 {
			out = append(out, ConnUse{Pool: c.Pool, Conns: n * c.Conns, For: fmt.Sprintf("%s (%s)", c.For, what)})
		}
	}
	return out
}
