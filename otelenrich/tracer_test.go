package otelenrich_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/batchenrichtest"
	"github.com/batchenrich/batchenrich/httpenrich"
	"github.com/batchenrich/batchenrich/otelenrich"
	"github.com/hashicorp/go-retryablehttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// traveler is a test item naming itself.
type traveler int

func (t traveler) Key() string { return "traveler-" + strconv.Itoa(int(t)) }

// telemetry is an SDK setup that keeps every span in memory and collects
// metrics on demand.
type telemetry struct {
	spans  *tracetest.InMemoryExporter
	reader *sdkmetric.ManualReader
	tp     *sdktrace.TracerProvider
	mp     *sdkmetric.MeterProvider
}

func newTelemetry(t *testing.T) *telemetry {
	t.Helper()
	tel := &telemetry{spans: tracetest.NewInMemoryExporter(), reader: sdkmetric.NewManualReader()}
	tel.tp = sdktrace.NewTracerProvider(sdktrace.WithSyncer(tel.spans), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	tel.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(tel.reader))
	t.Cleanup(func() {
		_ = tel.tp.Shutdown(context.Background())
		_ = tel.mp.Shutdown(context.Background())
	})
	return tel
}

func (tel *telemetry) metrics(t *testing.T) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := tel.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatalf("collect: %v", err)
	}
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[sm.Scope.Name+" "+m.Name] = m
		}
	}
	return out
}

// api answers /profile/{id}: 503 on the first attempt for id 3, 404 for
// id 4, else 200 with the id; it records the traceparent of each request.
type api struct {
	mu          sync.Mutex
	attempts    map[string]int
	traceparent []string
}

func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	a.mu.Lock()
	a.attempts[id]++
	n := a.attempts[id]
	a.traceparent = append(a.traceparent, r.Header.Get("traceparent"))
	a.mu.Unlock()
	switch {
	case id == "3" && n == 1:
		http.Error(w, "busy", http.StatusServiceUnavailable)
	case id == "4":
		http.Error(w, "no such traveler", http.StatusNotFound)
	default:
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id": %s}`, id)
	}
}

// smallRun runs travelers 0..4 in batches of 2 through httpenrich with the
// Tracer's Transport (or the transport wrap returns, if not nil), and
// returns the Run's error.
func smallRun(t *testing.T, tr *otelenrich.Tracer, a *api, opts batchenrich.Options, wrap func(http.RoundTripper) http.RoundTripper) error {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("GET /profile/{id}", a)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	base := &http.Transport{}
	defer base.CloseIdleConnections()
	if wrap == nil {
		wrap = tr.Transport
	}
	enr, err := httpenrich.New(httpenrich.Config[traveler, json.RawMessage, int]{
		URL: srv.URL + "/profile/{id}",
		Request: func(tv traveler) (httpenrich.Params, error) {
			return httpenrich.Params{Path: map[string]string{"id": strconv.Itoa(int(tv))}}, nil
		},
		Validate: func(tv traveler, resp *httpenrich.Response[json.RawMessage]) (int, error) {
			return int(tv), nil
		},
		Client:       &retryablehttp.Client{HTTPClient: &http.Client{Transport: wrap(base)}},
		MaxAttempts:  3,
		RetryWaitMin: time.Millisecond,
		RetryWaitMax: 5 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer enr.Close()
	src := batchenrichtest.NewSliceSource([]traveler{0, 1, 2, 3, 4})
	sink := batchenrichtest.NewSink[traveler, int]()
	opts.BatchSize, opts.Concurrency, opts.Tracer = 2, 2, tr
	r, err := batchenrich.New(src, enr, sink, opts)
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Run(context.Background())
	if cerr := sink.Check(); cerr != nil {
		t.Errorf("sink: %v", cerr)
	}
	return err
}

func attr(kvs []attribute.KeyValue, k attribute.Key) (attribute.Value, bool) {
	for _, kv := range kvs {
		if kv.Key == k {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

const otelhttpScope = "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

// TestSpanTreeAndMetrics checks the spans and metrics of a small run
// through Transport and through OTelHTTPTransport, with and without
// Options.Overlap.
func TestSpanTreeAndMetrics(t *testing.T) {
	for _, otelhttp := range []bool{false, true} {
		for _, overlap := range []bool{false, true} {
			t.Run(fmt.Sprintf("otelhttp=%v/overlap=%v", otelhttp, overlap), func(t *testing.T) { testSpanTreeAndMetrics(t, otelhttp, overlap) })
		}
	}
}

func testSpanTreeAndMetrics(t *testing.T, otelhttp, overlap bool) {
	tel := newTelemetry(t)
	tr, err := otelenrich.New(otelenrich.Config{
		TracerProvider: tel.tp, MeterProvider: tel.mp, Propagators: propagation.TraceContext{},
		ItemKeys: true,
		Limits:   func() map[string]int { return map[string]int{"api.example": 7} },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	a := &api{attempts: map[string]int{}}
	wrap, attempt, attemptScope := tr.Transport, "GET", otelenrich.ScopeName
	if otelhttp {
		wrap = func(base http.RoundTripper) http.RoundTripper { return tr.OTelHTTPTransport(base) }
		attempt, attemptScope = "HTTP GET", otelhttpScope
	}
	err = smallRun(t, tr, a, batchenrich.Options{MaxBatches: 3, Durable: &batchenrich.Durable{RunKey: "run-1", Store: batchenrichtest.NewCheckpoints()}, Overlap: overlap}, wrap)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}

	// The span tree.
	spans := tel.spans.GetSpans()
	byName := map[string][]tracetest.SpanStub{}
	byID := map[trace.SpanID]tracetest.SpanStub{}
	for _, s := range spans {
		byName[s.Name] = append(byName[s.Name], s)
		byID[s.SpanContext.SpanID()] = s
		if scope := s.InstrumentationScope.Name; scope != otelenrich.ScopeName && (s.Name != attempt || scope != attemptScope) {
			t.Errorf("span %s has scope %q", s.Name, scope)
		}
	}
	parent := func(s tracetest.SpanStub) tracetest.SpanStub { return byID[s.Parent.SpanID()] }
	count := map[string]int{}
	for n, ss := range byName {
		count[n] = len(ss)
	}
	want := map[string]int{"batchenrich.run": 1, "batchenrich.batch": 3, "batchenrich.read": 3, "batchenrich.write": 3, "batchenrich.item": 5, attempt: 6}
	if fmt.Sprint(count) != fmt.Sprint(want) {
		t.Fatalf("spans by name = %v, want %v", count, want)
	}
	run := byName["batchenrich.run"][0]
	if run.Parent.IsValid() {
		t.Errorf("run span has a parent")
	}
	if v, _ := attr(run.Attributes, otelenrich.AttrRunKey); v.AsString() != "run-1" {
		t.Errorf("run attributes = %v", run.Attributes)
	}
	for _, n := range []string{"batchenrich.batch", "batchenrich.read"} {
		for _, s := range byName[n] {
			if parent(s).Name != "batchenrich.run" {
				t.Errorf("%s's parent is %q", n, parent(s).Name)
			}
		}
	}
	batchOf := func(s tracetest.SpanStub) int64 {
		v, _ := attr(s.Attributes, otelenrich.AttrBatch)
		return v.AsInt64()
	}
	for _, n := range []string{"batchenrich.item", "batchenrich.write"} {
		for _, s := range byName[n] {
			if p := parent(s); p.Name != "batchenrich.batch" || batchOf(p) != batchOf(s) {
				t.Errorf("%s of batch %d: parent %s of batch %d", n, batchOf(s), p.Name, batchOf(p))
			}
		}
	}
	var resends []int64
	statuses := map[string][]string{} // item key: the status of each attempt
	for _, s := range byName[attempt] {
		p := parent(s)
		if p.Name != "batchenrich.item" || s.SpanKind != trace.SpanKindClient {
			t.Errorf("HTTP span's parent is %q, kind %v", p.Name, s.SpanKind)
		}
		key, _ := attr(p.Attributes, otelenrich.AttrItemKey)
		code, _ := attr(s.Attributes, "http.response.status_code")
		statuses[key.AsString()] = append(statuses[key.AsString()], fmt.Sprintf("%d %v", code.AsInt64(), s.Status.Code))
		if v, ok := attr(s.Attributes, "http.request.resend_count"); ok {
			resends = append(resends, v.AsInt64())
			if key.AsString() != "traveler-3" || code.AsInt64() != 200 {
				t.Errorf("resend on %s, status %d", key.AsString(), code.AsInt64())
			}
		}
		if !slices.Contains(a.traceparent, fmt.Sprintf("00-%s-%s-01", s.SpanContext.TraceID(), s.SpanContext.SpanID())) {
			t.Errorf("the server did not see the context of attempt span %s", s.SpanContext.SpanID())
		}
	}
	if fmt.Sprint(resends) != "[1]" {
		t.Errorf("resend counts = %v, want [1]", resends)
	}
	if got := fmt.Sprint(statuses); got != "map[traveler-0:[200 Unset] traveler-1:[200 Unset] traveler-2:[200 Unset] traveler-3:[503 Error 200 Unset] traveler-4:[404 Error]]" {
		t.Errorf("attempt statuses = %s", got)
	}
	for _, s := range byName["batchenrich.item"] {
		key, _ := attr(s.Attributes, otelenrich.AttrItemKey)
		outcome, _ := attr(s.Attributes, otelenrich.AttrOutcome)
		if key.AsString() == "traveler-4" {
			class, _ := attr(s.Attributes, otelenrich.AttrClass)
			if s.Status.Code != codes.Error || outcome.AsString() != "failed" || class.AsString() != "permanent" || len(s.Events) != 1 {
				t.Errorf("failed item span: %v %v %v", s.Status, s.Attributes, s.Events)
			}
		} else if s.Status.Code != codes.Unset || outcome.AsString() != "" {
			t.Errorf("item %s: %v %v", key.AsString(), s.Status, s.Attributes)
		}
	}

	// The metrics.
	ms := tel.metrics(t)
	scoped := func(name string) metricdata.Metrics {
		m, ok := ms[otelenrich.ScopeName+" "+name]
		if !ok {
			t.Fatalf("no metric %s", name)
		}
		return m
	}
	sums := func(name string) map[string]int64 {
		out := map[string]int64{}
		switch d := scoped(name).Data.(type) {
		case metricdata.Sum[int64]:
			for _, p := range d.DataPoints {
				out[p.Attributes.Encoded(attribute.DefaultEncoder())] += p.Value
			}
		case metricdata.Gauge[int64]:
			for _, p := range d.DataPoints {
				out[p.Attributes.Encoded(attribute.DefaultEncoder())] = p.Value
			}
		default:
			t.Fatalf("%s is a %T", name, d)
		}
		return out
	}
	counts := func(name string) map[string]uint64 {
		out := map[string]uint64{}
		for _, p := range scoped(name).Data.(metricdata.Histogram[float64]).DataPoints {
			out[p.Attributes.Encoded(attribute.DefaultEncoder())] = p.Count
		}
		return out
	}
	checks := []struct {
		name string
		got  any
		want string
	}{
		{otelenrich.MetricItems, sums(otelenrich.MetricItems),
			"map[batchenrich.error.class=permanent,batchenrich.item.outcome=failed:1 batchenrich.item.outcome=enriched:4]"},
		{otelenrich.MetricItemDuration, counts(otelenrich.MetricItemDuration),
			"map[batchenrich.error.class=permanent,batchenrich.item.outcome=failed:1 batchenrich.item.outcome=enriched:4]"},
		{otelenrich.MetricBatchDuration, counts(otelenrich.MetricBatchDuration), "map[batchenrich.batch.outcome=written:3]"},
		{otelenrich.MetricInFlight, sums(otelenrich.MetricInFlight), "map[:0]"},
		{otelenrich.MetricRetries, sums(otelenrich.MetricRetries), "map[:1]"},
		{otelenrich.MetricLimit, sums(otelenrich.MetricLimit), "map[server.address=api.example:7]"},
		{otelenrich.MetricBatchesDone, sums(otelenrich.MetricBatchesDone), "map[batchenrich.run.key=run-1:3]"},
		{otelenrich.MetricBatchesPlanned, sums(otelenrich.MetricBatchesPlanned), "map[batchenrich.run.key=run-1:3]"},
	}
	for _, c := range checks {
		if fmt.Sprint(c.got) != c.want {
			t.Errorf("%s = %v, want %s", c.name, c.got, c.want)
		}
	}
	_, httpMetrics := ms[otelhttpScope+" http.client.request.duration"]
	if httpMetrics != otelhttp {
		t.Errorf("otelhttp's metrics on the Tracer's MeterProvider: %v, want %v (%v)", httpMetrics, otelhttp, slices.Collect(mapKeys(ms)))
	}
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// A failed batch ends its span with an Error status and the run's too;
// item keys are not recorded unless asked.
func TestFailedRun(t *testing.T) {
	tel := newTelemetry(t)
	tr, err := otelenrich.New(otelenrich.Config{TracerProvider: tel.tp, MeterProvider: tel.mp})
	if err != nil {
		t.Fatal(err)
	}
	a := &api{attempts: map[string]int{}}
	err = smallRun(t, tr, a, batchenrich.Options{StopAfterFailures: 1}, nil)
	if !errors.Is(err, batchenrich.ErrTooManyFailures) {
		t.Fatalf("Run: %v", err)
	}
	var batches []string
	for _, s := range tel.spans.GetSpans() {
		if _, ok := attr(s.Attributes, otelenrich.AttrItemKey); ok {
			t.Errorf("span %s has the item key", s.Name)
		}
		switch s.Name {
		case "batchenrich.batch":
			batches = append(batches, s.Status.Code.String())
		case "batchenrich.run":
			if s.Status.Code != codes.Error {
				t.Errorf("run status = %v", s.Status)
			}
		}
	}
	if fmt.Sprint(batches) != "[Unset Unset Error]" {
		t.Errorf("batch statuses = %v", batches)
	}
	ms := tel.metrics(t)
	for name := range ms {
		if !strings.HasPrefix(name, otelenrich.ScopeName+" ") {
			t.Errorf("metric %s recorded outside otelenrich's scope", name)
		}
	}
	got := map[string]uint64{}
	for _, p := range ms[otelenrich.ScopeName+" "+otelenrich.MetricBatchDuration].Data.(metricdata.Histogram[float64]).DataPoints {
		got[p.Attributes.Encoded(attribute.DefaultEncoder())] = p.Count
	}
	if fmt.Sprint(got) != "map[batchenrich.batch.outcome=failed:1 batchenrich.batch.outcome=written:2]" {
		t.Errorf("batch durations = %v", got)
	}
}

// A resumed run's progress counts the batches of the runs before it, from
// its first batch on.
func TestProgressOnResume(t *testing.T) {
	store := batchenrichtest.NewCheckpoints()
	items := []traveler{0, 1, 2, 3, 4, 5}
	gaugeOf := func(ms map[string]metricdata.Metrics, name string) int64 {
		for _, p := range ms[otelenrich.ScopeName+" "+name].Data.(metricdata.Gauge[int64]).DataPoints {
			return p.Value
		}
		return -1
	}
	gauge := func(tel *telemetry, name string) int64 { return gaugeOf(tel.metrics(t), name) }
	var during int64 = -2
	var tel *telemetry
	enr := batchenrich.EnricherFunc[traveler, int](func(ctx context.Context, tv traveler) (int, error) {
		if tv == 2 { // batch 2, the resumed run's first
			during = gauge(tel, otelenrich.MetricBatchesDone)
		}
		return int(tv), nil
	})
	for i, cap := range []int{1, 3} {
		tel = newTelemetry(t)
		tr, err := otelenrich.New(otelenrich.Config{TracerProvider: tel.tp, MeterProvider: tel.mp})
		if err != nil {
			t.Fatal(err)
		}
		r, err := batchenrich.New(batchenrichtest.NewSliceSource(items), enr, batchenrichtest.NewSink[traveler, int](), batchenrich.Options{
			BatchSize:   2,
			Concurrency: 1,
			MaxBatches:  cap,
			Durable: &batchenrich.Durable{
				RunKey: "resumed",
				Store:  store,
			},
			Tracer: tr,
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		ms := tel.metrics(t) // one collection: the ended run's last
		done, planned := gaugeOf(ms, otelenrich.MetricBatchesDone), gaugeOf(ms, otelenrich.MetricBatchesPlanned)
		if done != int64(cap) || planned != int64(cap) {
			t.Errorf("run %d: batches done %d of %d, want %d of %d", i+1, done, planned, cap, cap)
		}
	}
	if during != 1 {
		t.Errorf("during the resumed run's first batch, batches done = %d, want 1", during)
	}
}

// With httpenrich's Config.Adaptive, Config.Limits: enr.Limits exposes
// each host's concurrency limit as a gauge.
func TestAdaptiveLimitGauge(t *testing.T) {
	tel := newTelemetry(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{}`)
	}))
	defer srv.Close()
	var enr *httpenrich.Enricher[traveler, json.RawMessage, json.RawMessage]
	tr, err := otelenrich.New(otelenrich.Config{TracerProvider: tel.tp, MeterProvider: tel.mp,
		Limits: func() map[string]int { return enr.Limits() }})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	enr, err = httpenrich.New(httpenrich.Config[traveler, json.RawMessage, json.RawMessage]{
		URL:      srv.URL + "/profile",
		Adaptive: &httpenrich.Adaptive{MaxConcurrency: 4, InitialConcurrency: 2},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer enr.Close()
	r, err := batchenrich.New(batchenrichtest.NewSliceSource(make([]traveler, 40)), enr,
		batchenrichtest.NewSink[traveler, json.RawMessage](), batchenrich.Options{BatchSize: 10, Concurrency: 4, Tracer: tr})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := enr.Limits()
	if len(want) != 1 {
		t.Fatalf("Limits() = %v, want one host", want)
	}
	got := map[string]int{}
	for _, p := range tel.metrics(t)[otelenrich.ScopeName+" "+otelenrich.MetricLimit].Data.(metricdata.Gauge[int64]).DataPoints {
		host, _ := p.Attributes.Value(otelenrich.AttrUpstream)
		got[host.AsString()] = int(p.Value)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("gauge = %v, want %v", got, want)
	}
	t.Logf("limits: %v", got)
}

// A Config.Limits that panics does not crash the process (a periodic
// reader collects on a goroutine of its own): the collection reports an
// error, and the other observations are made.
func TestLimitsPanicRecovered(t *testing.T) {
	tel := newTelemetry(t)
	tr, err := otelenrich.New(otelenrich.Config{MeterProvider: tel.mp,
		Limits: func() map[string]int { panic("no limits here") }})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	var rm metricdata.ResourceMetrics
	func() {
		defer func() {
			if p := recover(); p != nil {
				t.Fatalf("the collection panicked: %v", p)
			}
		}()
		err = tel.reader.Collect(context.Background(), &rm)
	}()
	if err == nil || !strings.Contains(err.Error(), "Config.Limits panicked: no limits here") {
		t.Errorf("collect error = %v, want one saying Config.Limits panicked", err)
	}
	found := false
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			found = found || m.Name == otelenrich.MetricInFlight
		}
	}
	if !found {
		t.Errorf("%s not observed", otelenrich.MetricInFlight)
	}
}

// A partitioned run has a run span per partition, with the partition's run
// key, under the span of the context given to Run; progress is per
// partition.
func TestPartitionedRun(t *testing.T) {
	tel := newTelemetry(t)
	tr, err := otelenrich.New(otelenrich.Config{TracerProvider: tel.tp, MeterProvider: tel.mp})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	enr := batchenrich.EnricherFunc[traveler, int](func(_ context.Context, tv traveler) (int, error) { return int(tv), nil })
	pr, err := batchenrich.NewPartitioned(2, func(p batchenrich.Partition) (batchenrich.Source[traveler], error) {
		var items []traveler
		for i := range 10 {
			if i%2 == p.Index {
				items = append(items, traveler(i))
			}
		}
		return batchenrichtest.NewSliceSource(items), nil
	}, enr, func(batchenrich.Partition) (batchenrich.Sink[traveler, int], error) {
		return batchenrichtest.NewSink[traveler, int](), nil
	}, batchenrich.Options{BatchSize: 2, Durable: &batchenrich.Durable{RunKey: "run", Store: batchenrichtest.NewCheckpoints()}, Tracer: tr})
	if err != nil {
		t.Fatal(err)
	}
	ctx, parent := tel.tp.Tracer("test").Start(context.Background(), "job")
	if _, err := pr.Run(ctx); err != nil {
		t.Fatal(err)
	}
	parent.End()
	var keys []string
	items := 0
	for _, s := range tel.spans.GetSpans() {
		switch s.Name {
		case otelenrich.SpanRun:
			k, _ := attr(s.Attributes, otelenrich.AttrRunKey)
			keys = append(keys, k.AsString())
			if s.Parent.SpanID() != parent.SpanContext().SpanID() {
				t.Errorf("run span %s is not under the caller's span", k.AsString())
			}
		case otelenrich.SpanItem:
			items++
		}
	}
	slices.Sort(keys)
	if fmt.Sprint(keys) != "[run#p0 run#p1]" || items != 10 {
		t.Errorf("run spans %v, %d item spans", keys, items)
	}
	got := map[string]int64{}
	for _, p := range tel.metrics(t)[otelenrich.ScopeName+" "+otelenrich.MetricBatchesDone].Data.(metricdata.Gauge[int64]).DataPoints {
		k, _ := p.Attributes.Value(otelenrich.AttrRunKey)
		got[k.AsString()] = p.Value
	}
	if fmt.Sprint(got) != "map[run#p0:3 run#p1:3]" {
		t.Errorf("batches done = %v", got)
	}
}

// A run's progress gauges are observed while it works in the process, and
// once more after it ended (its final value), then withdrawn: a partition
// that left the process (finished, stopped, taken over elsewhere) is not
// shown by this process's metrics any longer.
func TestProgressWithdrawnAfterTheRun(t *testing.T) {
	tel := newTelemetry(t)
	tr, err := otelenrich.New(otelenrich.Config{TracerProvider: tel.tp, MeterProvider: tel.mp})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	points := func() map[string]int {
		out := map[string]int{}
		ms := tel.metrics(t)
		for _, name := range []string{otelenrich.MetricBatchesDone, otelenrich.MetricBatchesPlanned} {
			if g, ok := ms[otelenrich.ScopeName+" "+name].Data.(metricdata.Gauge[int64]); ok {
				out[name] = len(g.DataPoints)
			}
		}
		return out
	}
	var during map[string]int
	enr := batchenrich.EnricherFunc[traveler, int](func(ctx context.Context, tv traveler) (int, error) {
		if tv == 3 {
			during = points()
		}
		return int(tv), nil
	})
	r, err := batchenrich.New(batchenrichtest.NewSliceSource([]traveler{0, 1, 2, 3}), enr, batchenrichtest.NewSink[traveler, int](),
		batchenrich.Options{BatchSize: 2, Concurrency: 1, MaxBatches: 2, Durable: &batchenrich.Durable{RunKey: "run-1", Store: batchenrichtest.NewCheckpoints()}, Tracer: tr})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprint(map[string]int{otelenrich.MetricBatchesDone: 1, otelenrich.MetricBatchesPlanned: 1})
	if fmt.Sprint(during) != want {
		t.Errorf("during the run: %v data points, want %s", during, want)
	}
	if got := points(); fmt.Sprint(got) != want {
		t.Errorf("first collection after the run: %v data points, want its final values (%s)", got, want)
	}
	if got := points(); len(got) != 0 && fmt.Sprint(got) != fmt.Sprint(map[string]int{otelenrich.MetricBatchesDone: 0, otelenrich.MetricBatchesPlanned: 0}) {
		t.Errorf("second collection after the run: %v data points, want none", got)
	}
}
