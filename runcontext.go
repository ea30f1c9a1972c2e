package batchenrich

import (
	"context"
	"log/slog"
	"sort"
	"sync"
)

// runInfo is what a Run puts in the context it hands to the Source, the
// Enricher and the Sink: the run key, and where an Enricher reports the
// changes of its concurrency limits. One is allocated per Run, none per
// item.
type runInfo struct {
	key    string
	tracer Tracer // Options.Tracer, nil when unset
	log    *slog.Logger

	mu     sync.Mutex
	limits map[string]*UpstreamLimit
}

type runInfoKey struct{}

// withRunInfo returns ctx carrying a new runInfo for a Run with options o
// (defaults filled in).
func withRunInfo(ctx context.Context, o Options) (context.Context, *runInfo) {
	ri := &runInfo{key: o.key, tracer: o.Tracer, log: o.Logger}
	return context.WithValue(ctx, runInfoKey{}, ri), ri
}

func runInfoFrom(ctx context.Context) *runInfo {
	ri, _ := ctx.Value(runInfoKey{}).(*runInfo)
	return ri
}

// RunKeyFromContext returns the run key of the Run that passed ctx
// (or a context derived from it) to an Enricher, a Source or a Sink. ok is
// false when ctx does not come from a Run, or the Run is not durable. The key
// is Durable.RunKey, or Partition.RunKey(Durable.RunKey) for a partition
// of a split run.
//
// The run key is stable across a crash and a resume, which makes it, joined
// with an item's key (Keyer), a stable name for one item's work: httpenrich
// derives its Idempotency-Key header from the two.
func RunKeyFromContext(ctx context.Context) (key string, ok bool) {
	ri := runInfoFrom(ctx)
	if ri == nil || ri.key == "" {
		return "", false
	}
	return ri.key, true
}

// LimitChange is a change of the concurrency limit an Enricher applies to
// one upstream (for httpenrich with Config.Adaptive: one host), reported
// with ReportLimitChange.
type LimitChange struct {
	// Upstream names what the limit applies to, e.g. "api.example.com".
	Upstream string
	// From and To are the limits before and after: requests in flight at
	// most.
	From, To int
	// Reason says why in a few words, e.g. "429", "503", "latency",
	// "growth".
	Reason string
}

// UpstreamLimit sums up the changes of one upstream's concurrency limit
// during a run (Report.Limits).
type UpstreamLimit struct {
	// Upstream names the upstream, as LimitChange.Upstream does.
	Upstream string
	// First is the limit before the first change; Last the limit after
	// the last one; Min and Max the extremes reached, First included.
	First, Last, Min, Max int
	// Increases and Decreases count the changes up and down.
	Increases, Decreases int
}

// ReportLimitChange records c in the Report of the Run that passed ctx to
// the Enricher (Report.Limits), passes it to the Options.Tracer's
// TraceLimitChange, and logs it to Options.Logger: a decrease at Info
// ("batchenrich: concurrency limit lowered"), an increase at Debug. It is
// safe for concurrent use, and does nothing when ctx does not come from a
// Run or c.From equals c.To.
func ReportLimitChange(ctx context.Context, c LimitChange) {
	ri := runInfoFrom(ctx)
	if ri == nil || c.From == c.To {
		return
	}
	ri.mu.Lock()
	if ri.limits == nil {
		ri.limits = make(map[string]*UpstreamLimit)
	}
	u := ri.limits[c.Upstream]
	if u == nil {
		u = &UpstreamLimit{Upstream: c.Upstream, First: c.From, Min: c.From, Max: c.From}
		ri.limits[c.Upstream] = u
	}
	u.Last = c.To
	u.Min, u.Max = min(u.Min, c.To), max(u.Max, c.To)
	if c.To > c.From {
		u.Increases++
	} else {
		u.Decreases++
	}
	ri.mu.Unlock()

	if ri.tracer != nil {
		if err := guarded(func() error { ri.tracer.TraceLimitChange(ctx, c); return nil }); err != nil && ri.log != nil {
			ri.log.ErrorContext(ctx, "batchenrich: Tracer.TraceLimitChange panicked", "error", err)
		}
	}
	if ri.log != nil {
		level, msg := slog.LevelDebug, "batchenrich: concurrency limit raised"
		if c.To < c.From {
			level, msg = slog.LevelInfo, "batchenrich: concurrency limit lowered"
		}
		ri.log.Log(ctx, level, msg, "upstream", c.Upstream, "from", c.From, "to", c.To, "reason", c.Reason)
	}
}

// reportLimits returns the upstream limits recorded so far, sorted by
// upstream, or nil.
func (ri *runInfo) reportLimits() []UpstreamLimit {
	ri.mu.Lock()
	defer ri.mu.Unlock()
	if len(ri.limits) == 0 {
		return nil
	}
	out := make([]UpstreamLimit, 0, len(ri.limits))
	for _, u := range ri.limits {
		out = append(out, *u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Upstream < out[j].Upstream })
	return out
}
