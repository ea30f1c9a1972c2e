// Package otelenrich makes OpenTelemetry traces and metrics of batchenrich
// runs. It is a module of its own, so that users of the core never download
// OpenTelemetry.
//
// A Tracer implements batchenrich.Tracer: set it in
// batchenrich.Options.Tracer. The package depends on the
// OpenTelemetry API (and otelhttp, for OTelHTTPTransport), not the SDK, and takes a TracerProvider
// and a MeterProvider (the global ones by default): the application
// chooses the SDK, the sampler and the exporters (the module's tests and
// example use the SDK). Its instrumentation scope is ScopeName, this package's path.
//
//	tr, err := otelenrich.New(otelenrich.Config{TracerProvider: tp, MeterProvider: mp})
//	runner, err := batchenrich.New(src, enr, sink, batchenrich.Options{…, Tracer: tr})
//
// # Spans
//
// One batchenrich.run span per Run; under it a batchenrich.batch span per
// batch and a batchenrich.read span per Source read; under a batch, a
// batchenrich.item span per item and a batchenrich.write span for the
// Sink write (with its checkpoint). Tracer.Transport wraps an HTTP
// transport so that each attempt is a client span under its item, after
// the HTTP client semantic conventions, with http.request.resend_count on
// resends; Tracer.OTelHTTPTransport does the same with otelhttp's
// transport, for its spans and client metrics at several times the cost
// (see Cost). Failed items and
// batches have an Error status and the error recorded; canceled items
// (their batch was abandoned) do not. The run span is a child of the span
// in the context given to Run, if any; a batchenrich.NewPartitioned run has
// one run span per partition, with the partition's run key, and its
// progress per partition.
//
// # Metrics
//
// Items by outcome and error class (MetricItems), item and batch durations
// (MetricItemDuration, MetricBatchDuration, histograms in seconds),
// enrichments in flight (MetricInFlight), HTTP resends (MetricRetries,
// through either transport), each upstream's concurrency limit where the
// Enricher adapts one (MetricLimit, from Config.Limits), and the run's
// progress: batches done of planned (MetricBatchesDone,
// MetricBatchesPlanned), observed for the runs working in the process and
// withdrawn once a run ends (after one last observation of its final
// value): a partition that moved to another process (riverenrich) is
// shown by that process only. Transport records no HTTP metrics;
// OTelHTTPTransport records otelhttp's (http.client.request.duration and
// http.client.request.body.size) on the Tracer's MeterProvider.
//
// # Cost
//
// A Tracer's methods run synchronously in the Runner (see
// batchenrich.Tracer for where); with a batch span processor they only
// queue spans. Per enriched item, the Tracer allocates once (the item's
// context) beside the SDK's span; per attempt, Transport allocates 2.6 kB,
// the SDK's span included, against 6.4 kB through OTelHTTPTransport. On the
// benchmark's CPU-bound scenario, where the client's work per item is
// small, the Tracer alone costs about 8 % of the client's CPU and, with
// Transport, 24–30 %, where two bare SDK spans per item already cost
// 6–16 %: the repository's BENCHMARKS.md has the figures.
//
// The program in examples/travelers runs the seed job with spans on
// standard output and metrics for Prometheus.
package otelenrich
