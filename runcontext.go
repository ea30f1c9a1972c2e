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

// UpstreamLimit is the concurrency limit an Enricher applies to one
// upstream (for httpenrich with Config.Adaptive: one host), and how it
// changed during a run. Tracer.TraceLimitChange receives it after each
// change (ReportLimitChange), and Report.Limits as it stood at the end.
type UpstreamLimit struct {
	// Upstream names what the limit applies to, e.g. "api.example.com".
	Upstream string
	// From and To are the limits (requests in flight at most) before and
	// after the latest change, and Reason says why it changed, in a few
	// words, e.g. "429", "503", "latency", "growth".
	From, To int
	Reason   string
	// First is the limit before the first change; Min and Max the
	// extremes reached, First included.
	First, Min, Max int
	// Increases and Decreases count the changes up and down, the latest
	// included.
	Increases, Decreases int
}

// ReportLimitChange reports that the Enricher changed the concurrency
// limit it applies to upstream from one value to another, for reason (see
// UpstreamLimit). The Run that passed ctx to the Enricher sums it up in
// its Report (Report.Limits), passes the upstream's UpstreamLimit to the
// Options.Tracer's TraceLimitChange, and logs it to Options.Logger: a
// decrease at Info ("batchenrich: concurrency limit lowered"), an increase
// at Debug. It is safe for concurrent use, and does nothing when ctx does
// not come from a Run or from equals to.
func ReportLimitChange(ctx context.Context, upstream string, from, to int, reason string) {
	ri := runInfoFrom(ctx)
	if ri == nil || from == to {
		return
	}
	ri.mu.Lock()
	if ri.limits == nil {
		ri.limits = make(map[string]*UpstreamLimit)
	}
	u := ri.limits[upstream]
	if u == nil {
		u = &UpstreamLimit{Upstream: upstream, First: from, Min: from, Max: from}
		ri.limits[upstream] = u
	}
	u.From, u.To, u.Reason = from, to, reason
	u.Min, u.Max = min(u.Min, to), max(u.Max, to)
	if to > from {
		u.Increases++
	} else {
		u.Decreases++
	}
	l := *u
	ri.mu.Unlock()

	if ri.tracer != nil {
		if err := guarded(func() error { ri.tracer.TraceLimitChange(ctx, l); return nil }); err != nil && ri.log != nil {
			ri.log.ErrorContext(ctx, "batchenrich: Tracer.TraceLimitChange panicked", "error", err)
		}
	}
	if ri.log != nil {
		level, msg := slog.LevelDebug, "batchenrich: concurrency limit raised"
		if to < from {
			level, msg = slog.LevelInfo, "batchenrich: concurrency limit lowered"
		}
		ri.log.Log(ctx, level, msg, "upstream", upstream, "from", from, "to", to, "reason", reason)
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
