package batchenrich_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/batchenrichtest"
)

func TestRunKeyFromContext(t *testing.T) {
	t.Parallel()
	for _, key := range []string{"", "run-7"} {
		var mu sync.Mutex
		seen := map[string]bool{}
		enr := batchenrichtest.NewEnricher(func(ctx context.Context, i item) (int, error) {
			k, ok := batchenrich.RunKeyFromContext(ctx)
			if ok != (k != "") {
				t.Errorf("RunKeyFromContext = %q, %v", k, ok)
			}
			mu.Lock()
			seen[k] = true
			mu.Unlock()
			return int(i), nil
		})
		o := batchenrich.Options{BatchSize: 3}
		if key != "" {
			o.Durable = &batchenrich.Durable{Store: batchenrichtest.NewCheckpoints(), RunKey: key}
		}
		r, err := batchenrich.New[item, int](batchenrichtest.NewSliceSource(items(10)), enr,
			batchenrichtest.NewSink[item, int](), o)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		if len(seen) != 1 || !seen[key] {
			t.Errorf("run key %q: the Enricher saw %v", key, seen)
		}
	}
	if k, ok := batchenrich.RunKeyFromContext(context.Background()); ok || k != "" {
		t.Errorf("outside a Run: %q, %v", k, ok)
	}
}

func TestReportLimitChange(t *testing.T) {
	t.Parallel()
	type change struct {
		upstream string
		from, to int
		reason   string
	}
	changes := []change{
		{"b.example", 4, 8, "growth"},
		{"a.example", 10, 9, "429"},
		{"b.example", 8, 3, "503"},
		{"b.example", 3, 3, "none"}, // not a change
		{"b.example", 3, 5, "growth"},
	}
	enr := batchenrichtest.NewEnricher(func(ctx context.Context, i item) (int, error) {
		if i == 0 {
			for _, c := range changes {
				batchenrich.ReportLimitChange(ctx, c.upstream, c.from, c.to, c.reason)
			}
		}
		return int(i), nil
	})
	var logs bytes.Buffer
	events := make(chan event, 100)
	r, err := batchenrich.New[item, int](batchenrichtest.NewSliceSource(items(5)), enr, batchenrichtest.NewSink[item, int](),
		batchenrich.Options{Tracer: eventTracer(events), Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := r.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []batchenrich.UpstreamLimit{
		{Upstream: "a.example", From: 10, To: 9, Reason: "429", First: 10, Min: 9, Max: 10, Decreases: 1},
		{Upstream: "b.example", From: 3, To: 5, Reason: "growth", First: 4, Min: 3, Max: 8, Increases: 2, Decreases: 1},
	}
	if len(rep.Limits) != len(want) {
		t.Fatalf("Report.Limits = %+v, want %+v", rep.Limits, want)
	}
	for i := range want {
		if rep.Limits[i] != want[i] {
			t.Errorf("Report.Limits[%d] = %+v, want %+v", i, rep.Limits[i], want[i])
		}
	}
	close(events)
	var got []batchenrich.UpstreamLimit
	for ev := range events {
		if ev.Kind == evLimitChanged {
			got = append(got, *ev.Limit)
		}
	}
	// The Tracer sees each upstream's limit after each change.
	if len(got) != 4 || got[0] != (batchenrich.UpstreamLimit{Upstream: "b.example", From: 4, To: 8, Reason: "growth", First: 4, Min: 4, Max: 8, Increases: 1}) ||
		got[3] != want[1] {
		t.Errorf("limit events = %+v", got)
	}
	out := logs.String()
	if n := strings.Count(out, "concurrency limit lowered"); n != 2 {
		t.Errorf("%d lowered records, want 2:\n%s", n, out)
	}
	if !strings.Contains(out, "upstream=a.example from=10 to=9 reason=429") {
		t.Errorf("log lacks the change's fields:\n%s", out)
	}
	// Outside a Run it does nothing (and does not panic).
	batchenrich.ReportLimitChange(context.Background(), "a.example", 1, 2, "growth")
}

// limitPanicTracer panics in TraceLimitChange.
type limitPanicTracer struct{ nopTracer }

func (limitPanicTracer) TraceLimitChange(context.Context, batchenrich.UpstreamLimit) {
	panic("limit hook")
}

// A panic in TraceLimitChange does not escape: ReportLimitChange returns,
// the change is still summed up in the Report, and the panic is logged.
func TestTraceLimitChangePanicLogged(t *testing.T) {
	t.Parallel()
	enr := batchenrichtest.NewEnricher(func(ctx context.Context, i item) (int, error) {
		if i == 0 {
			batchenrich.ReportLimitChange(ctx, "a.example", 4, 2, "503")
		}
		return int(i), nil
	})
	var logs bytes.Buffer
	r, err := batchenrich.New[item, int](batchenrichtest.NewSliceSource(items(3)), enr, batchenrichtest.NewSink[item, int](),
		batchenrich.Options{Tracer: limitPanicTracer{}, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := r.Run(context.Background())
	if err != nil || rep.Written != 3 || len(rep.Limits) != 1 || rep.Limits[0].To != 2 {
		t.Fatalf("Run = %+v, %v", rep, err)
	}
	if out := logs.String(); !strings.Contains(out, "TraceLimitChange panicked") || !strings.Contains(out, "limit hook") {
		t.Errorf("the panic is not logged:\n%s", out)
	}
}
