package otelenrich

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/redact"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of the spans and metrics: this
// package's import path.
const ScopeName = "github.com/batchenrich/batchenrich/otelenrich"

// Span names.
const (
	SpanRun   = "batchenrich.run"
	SpanBatch = "batchenrich.batch"
	SpanItem  = "batchenrich.item"
	SpanRead  = "batchenrich.read"
	SpanWrite = "batchenrich.write"
)

// Attribute keys set on spans and metrics.
const (
	AttrRunKey       = attribute.Key("batchenrich.run.key")
	AttrBatchSize    = attribute.Key("batchenrich.batch.size")
	AttrMaxBatches   = attribute.Key("batchenrich.run.max_batches")
	AttrConcurrency  = attribute.Key("batchenrich.concurrency")
	AttrBatch        = attribute.Key("batchenrich.batch.number")
	AttrItems        = attribute.Key("batchenrich.batch.items")
	AttrItemIndex    = attribute.Key("batchenrich.item.index")
	AttrItemKey      = attribute.Key("batchenrich.item.key")
	AttrOutcome      = attribute.Key("batchenrich.item.outcome")
	AttrClass        = attribute.Key("batchenrich.error.class")
	AttrBatchOutcome = attribute.Key("batchenrich.batch.outcome")
	AttrWritten      = attribute.Key("batchenrich.batch.written")
	AttrFailed       = attribute.Key("batchenrich.batch.failed")
	AttrUpstream     = attribute.Key("server.address")
)

// Config configures a Tracer. The zero value is valid: the global
// providers, no item keys, no concurrency limits.
type Config struct {
	// TracerProvider creates the spans. Nil means otel.GetTracerProvider()
	// at New.
	TracerProvider trace.TracerProvider

	// MeterProvider creates the metrics. Nil means otel.GetMeterProvider()
	// at New.
	MeterProvider metric.MeterProvider

	// Propagators inject the trace context into the requests sent through
	// Transport or OTelHTTPTransport. Nil means otel.GetTextMapPropagator()
	// at New.
	Propagators propagation.TextMapPropagator

	// ItemKeys records each item's key (batchenrich.Keyer) on its span as
	// batchenrich.item.key. Off by default: keys may identify people.
	ItemKeys bool

	// Limits, if set, reports the current concurrency limit per upstream
	// (host to requests in flight at most), observed as the gauge
	// batchenrich.concurrency.limit with a server.address attribute. For
	// httpenrich with Config.Adaptive, pass the Enricher's Limits method.
	// It is called from the MeterProvider's collection, so it must be safe
	// for concurrent use. A panic in it is recovered and returned as the
	// collection callback's error (the SDK hands it to the OpenTelemetry
	// error handler), the limits going unobserved that time. Call Close to
	// stop observing it.
	Limits func() map[string]int
}

// Tracer is a batchenrich.Tracer that makes OpenTelemetry
// spans and metrics of a run. Create one with New (the zero value is not
// usable) and set it in batchenrich.Options.Tracer; wrap
// the Enricher's HTTP transport with Transport to see each attempt too. It
// is safe for concurrent use and may serve any number of runs, one after
// the other or at once.
//
// Spans: batchenrich.run, its child batchenrich.batch per batch, whose
// children are batchenrich.item per item and batchenrich.write for the
// Sink write; batchenrich.read per Source read, child of the run (a read
// may be a prefetch, running beside the previous batch). Through
// Transport, one HTTP client span per attempt is a child of the item.
//
// Metrics: see the Metric constants.
type Tracer struct {
	tracer      trace.Tracer
	tp          trace.TracerProvider
	mp          metric.MeterProvider
	propagators propagation.TextMapPropagator
	itemKeys    bool
	m           instruments
	inFlight    atomic.Int64 // observed as MetricInFlight
	reg         metric.Registration

	runsMu sync.Mutex
	runs   map[*runState]struct{} // observed as MetricBatchesDone and MetricBatchesPlanned
}

var _ batchenrich.Tracer = (*Tracer)(nil)

// New returns a Tracer configured by cfg. It fails only when the
// MeterProvider refuses an instrument.
func New(cfg Config) (*Tracer, error) {
	t := &Tracer{tp: cfg.TracerProvider, mp: cfg.MeterProvider, propagators: cfg.Propagators, itemKeys: cfg.ItemKeys,
		runs: map[*runState]struct{}{}}
	if t.tp == nil {
		t.tp = otel.GetTracerProvider()
	}
	if t.mp == nil {
		t.mp = otel.GetMeterProvider()
	}
	if t.propagators == nil {
		t.propagators = otel.GetTextMapPropagator()
	}
	t.tracer = t.tp.Tracer(ScopeName)
	meter := t.mp.Meter(ScopeName)
	m, err := newInstruments(meter)
	if err != nil {
		return nil, err
	}
	t.m = m
	// The enrichments in flight are counted in an atomic and observed at
	// collection, rather than added to an UpDownCounter twice per item.
	limits := cfg.Limits
	t.reg, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) (err error) {
		o.ObserveInt64(m.inFlight, t.inFlight.Load())
		t.observeRuns(o)
		if limits != nil {
			// The SDK does not recover a callback's panic, and a periodic
			// reader collects on a goroutine of its own: the process would
			// end.
			defer func() {
				if p := recover(); p != nil {
					err = fmt.Errorf("otelenrich: Config.Limits panicked: %s", redact.Text(fmt.Sprint(p)))
				}
			}()
			for up, n := range limits() {
				o.ObserveInt64(m.limit, int64(n), metric.WithAttributes(AttrUpstream.String(up)))
			}
		}
		return nil
	}, m.inFlight, m.limit, m.done, m.planned)
	if err != nil {
		return nil, errors.Join(errors.New("otelenrich: register the observation callback"), err)
	}
	return t, nil
}

// Close unregisters the callback observing MetricInFlight and
// Config.Limits from the MeterProvider. The Tracer stays usable for spans
// and the other metrics.
func (t *Tracer) Close() error {
	return t.reg.Unregister()
}

// itemState is an item's context: the context TraceItemStart returns,
// carrying the item's start (for the duration, when the span cannot tell
// it) and its HTTP attempts (for Transport). Being the context itself, and
// holding the span's attributes, it saves the allocations of a
// context.WithValue and of an attribute slice.
type itemState struct {
	context.Context
	start    time.Time // zero when the span keeps the times (spanTimes)
	attempts atomic.Int32
	attrs    [3]attribute.KeyValue // given to the span, which copies them
}

type itemStateKey struct{}

// Value returns the itemState for itemStateKey, else the parent's value.
func (s *itemState) Value(key any) any {
	if key == (itemStateKey{}) {
		return s
	}
	return s.Context.Value(key)
}

// spanTimes is what an SDK span tells of its times (the SDK's
// ReadOnlySpan has these methods): an item's duration is its span's, so
// that the clock is read once at each end, for both.
type spanTimes interface {
	StartTime() time.Time
	EndTime() time.Time
}

func itemFrom(ctx context.Context) *itemState {
	s, _ := ctx.Value(itemStateKey{}).(*itemState)
	return s
}

// batchState travels in a batch's context: its start, for the duration.
type batchState struct {
	start time.Time
}

type batchStateKey struct{}

// runState travels in a run's context: the run key and progress, for the
// progress gauges.
type runState struct {
	key     attribute.Set
	started atomic.Bool  // a batch started
	done    atomic.Int64 // batches done, observed as MetricBatchesDone
	planned int64        // observed as MetricBatchesPlanned
	ended   atomic.Bool  // the run ended: observe it once more, then withdraw it
}

// observeRuns observes the progress of the runs working in this process,
// and of those that ended since the last observation, which it then
// forgets: a run's gauges are withdrawn once it leaves the process.
func (t *Tracer) observeRuns(o metric.Observer) {
	t.runsMu.Lock()
	defer t.runsMu.Unlock()
	for rs := range t.runs {
		opt := metric.WithAttributeSet(rs.key)
		o.ObserveInt64(t.m.done, rs.done.Load(), opt)
		o.ObserveInt64(t.m.planned, rs.planned, opt)
		if rs.ended.Load() {
			delete(t.runs, rs)
		}
	}
}

type runStateKey struct{}

func runFrom(ctx context.Context) *runState {
	s, _ := ctx.Value(runStateKey{}).(*runState)
	if s == nil {
		s = &runState{key: attribute.NewSet()}
	}
	return s
}

// TraceRunStart starts the run's span and records the batches planned.
func (t *Tracer) TraceRunStart(ctx context.Context, d batchenrich.TraceRun) context.Context {
	attrs := []attribute.KeyValue{
		AttrBatchSize.Int(d.BatchSize),
		AttrMaxBatches.Int(d.MaxBatches),
		AttrConcurrency.Int(d.Concurrency),
	}
	var set attribute.Set
	if d.RunKey != "" {
		attrs = append(attrs, AttrRunKey.String(d.RunKey))
		set = attribute.NewSet(AttrRunKey.String(d.RunKey))
	} else {
		set = attribute.NewSet()
	}
	ctx, _ = t.tracer.Start(ctx, SpanRun, trace.WithAttributes(attrs...))
	rs := &runState{key: set, planned: int64(d.MaxBatches)}
	t.runsMu.Lock()
	t.runs[rs] = struct{}{}
	t.runsMu.Unlock()
	return context.WithValue(ctx, runStateKey{}, rs)
}

// TraceRunEnd ends the run's span; the run's progress gauges are
// withdrawn after the next observation.
func (t *Tracer) TraceRunEnd(ctx context.Context, d batchenrich.TraceRun) {
	if rs, ok := ctx.Value(runStateKey{}).(*runState); ok {
		rs.ended.Store(true)
	}
	span := trace.SpanFromContext(ctx)
	r := d.Report
	span.SetAttributes(
		attribute.Int("batchenrich.run.batches_run", r.BatchesRun),
		attribute.Int("batchenrich.run.batches_skipped", r.BatchesSkipped),
		attribute.Int("batchenrich.run.written", r.Written),
		attribute.Int("batchenrich.run.failed", r.Failed),
	)
	if d.Err != nil {
		fail(span, d.Err)
	}
	span.End()
}

// TraceBatchStart starts the batch's span; the run's first batch records
// the batches done before it (by the runs a resumed run resumes).
func (t *Tracer) TraceBatchStart(ctx context.Context, d batchenrich.TraceBatch) context.Context {
	if rs := runFrom(ctx); rs.started.CompareAndSwap(false, true) {
		rs.done.Store(int64(d.Batch - 1))
	}
	ctx, _ = t.tracer.Start(ctx, SpanBatch, trace.WithAttributes(AttrBatch.Int(d.Batch), AttrItems.Int(d.Items)))
	return context.WithValue(ctx, batchStateKey{}, &batchState{start: time.Now()})
}

// TraceBatchEnd ends the batch's span, records its duration and, when it
// was written, the batches done.
func (t *Tracer) TraceBatchEnd(ctx context.Context, d batchenrich.TraceBatch) {
	span := trace.SpanFromContext(ctx)
	span.SetAttributes(AttrWritten.Int(d.Stats.Written), AttrFailed.Int(d.Stats.Failed))
	outcome := t.m.batchWritten
	if d.Err != nil {
		outcome = t.m.batchFailed
		fail(span, d.Err)
	} else {
		runFrom(ctx).done.Store(int64(d.Batch))
	}
	if s, ok := ctx.Value(batchStateKey{}).(*batchState); ok {
		t.m.batchDuration.Record(ctx, time.Since(s.start).Seconds(), outcome)
	}
	span.End()
}

// TraceItemStart starts the item's span and counts it in flight.
func (t *Tracer) TraceItemStart(ctx context.Context, d batchenrich.TraceItem) context.Context {
	t.inFlight.Add(1)
	s := &itemState{}
	attrs := append(s.attrs[:0], AttrBatch.Int(d.Batch), AttrItemIndex.Int(d.Index))
	if t.itemKeys && d.Key != "" {
		attrs = append(attrs, AttrItemKey.String(d.Key))
	}
	// Set after the start rather than with trace.WithAttributes, which
	// costs two more allocations (the option and the config's copy): no
	// sampler needs an item's number.
	ctx, span := t.tracer.Start(ctx, SpanItem)
	span.SetAttributes(attrs...)
	s.Context = ctx
	if _, ok := span.(spanTimes); !ok || !span.IsRecording() {
		s.start = time.Now()
	}
	return s
}

// TraceItemEnd ends the item's span and counts it by outcome and class.
func (t *Tracer) TraceItemEnd(ctx context.Context, d batchenrich.TraceItem) {
	t.inFlight.Add(-1)
	span := trace.SpanFromContext(ctx)
	out := outcomeOf(d)
	o := t.m.outcome(out, d.Class)
	if out != enriched {
		span.SetAttributes(AttrOutcome.String(out.String()), AttrClass.String(d.Class.String()))
		if out != canceled && d.Err != nil {
			fail(span, d.Err)
		}
	}
	// Recorded without the item's context, so without an exemplar: with
	// a sampled span, the SDK's default filter would offer every item to
	// the exemplar reservoir, which costs more than the measurement (the
	// item spans already carry the durations).
	span.End()
	t.m.items.Add(context.Background(), 1, o.add...)
	if s := itemFrom(ctx); s != nil {
		var d time.Duration
		if st, ok := span.(spanTimes); ok && s.start.IsZero() {
			d = st.EndTime().Sub(st.StartTime())
		} else {
			d = time.Since(s.start)
		}
		t.m.itemDuration.Record(context.Background(), d.Seconds(), o.record...)
	}
}

// TraceStageStart starts the span of a Source read or Sink write.
func (t *Tracer) TraceStageStart(ctx context.Context, d batchenrich.TraceStage) context.Context {
	name := SpanWrite
	if d.Stage == batchenrich.StageRead {
		name = SpanRead
	}
	ctx, _ = t.tracer.Start(ctx, name, trace.WithAttributes(AttrBatch.Int(d.Batch)))
	return ctx
}

// TraceStageEnd ends the span of a Source read or Sink write.
func (t *Tracer) TraceStageEnd(ctx context.Context, d batchenrich.TraceStage) {
	span := trace.SpanFromContext(ctx)
	span.SetAttributes(AttrItems.Int(d.Items))
	if d.Err != nil {
		fail(span, d.Err)
	}
	span.End()
}

// TraceLimitChange does nothing: the limits are observed as MetricLimit
// (Config.Limits), and the run's Report sums up their changes.
func (t *Tracer) TraceLimitChange(context.Context, batchenrich.UpstreamLimit) {}

// fail records err on span and sets the span's status to Error.
func fail(span trace.Span, err error) {
	span.RecordError(err)
	span.SetStatus(codes.Error, err.Error())
}
