package otelenrich

import (
	"errors"

	"github.com/batchenrich/batchenrich"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Metric names. Durations are in seconds; Prometheus shows the names with
// dots as underscores and counters with a _total suffix.
const (
	// MetricItems counts items enriched, failed, canceled or panicked
	// (batchenrich.item.outcome), with the error's class
	// (batchenrich.error.class: transient, permanent, fatal, unclassified;
	// see batchenrich.Classify).
	MetricItems = "batchenrich.items"
	// MetricItemDuration is a histogram of each item's enrichment time,
	// by outcome and class as MetricItems.
	MetricItemDuration = "batchenrich.item.duration"
	// MetricBatchDuration is a histogram of each batch's time from its
	// first enrichment to the end of its write, by batchenrich.batch.outcome
	// (written or failed).
	MetricBatchDuration = "batchenrich.batch.duration"
	// MetricInFlight is the number of enrichments in flight.
	MetricInFlight = "batchenrich.items.in_flight"
	// MetricRetries counts the HTTP requests resent for an item (retries
	// and redirects) through Transport or OTelHTTPTransport.
	MetricRetries = "batchenrich.http.retries"
	// MetricLimit is the concurrency limit per upstream (server.address),
	// observed from Config.Limits.
	MetricLimit = "batchenrich.concurrency.limit"
	// MetricBatchesDone is the run's progress: batches written, resumed
	// runs counting those of the runs before (the last batch number
	// written); by batchenrich.run.key. Like MetricBatchesPlanned, it is
	// observed for the runs working in this process: a run that ended —
	// finished, failed, or a partition leaving for another process (a
	// riverenrich slice's end, a takeover) — is observed once more, with
	// its final value, and then withdrawn.
	MetricBatchesDone = "batchenrich.run.batches.done"
	// MetricBatchesPlanned is the run's cap, Options.MaxBatches; 0 when
	// the run has none. By batchenrich.run.key; withdrawn as
	// MetricBatchesDone.
	MetricBatchesPlanned = "batchenrich.run.batches.planned"
)

// durationBuckets are the histogram bounds, in seconds, from 1 ms to a
// minute (the HTTP semantic conventions' advice, extended).
var durationBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 30, 60}

// outcomeOpts are the measurement options of one outcome and class,
// built once, slices included, so that recording allocates nothing.
type outcomeOpts struct {
	add    []metric.AddOption
	record []metric.RecordOption
}

func newOutcomeOpts(set attribute.Set) outcomeOpts {
	opt := metric.WithAttributeSet(set)
	return outcomeOpts{add: []metric.AddOption{opt}, record: []metric.RecordOption{opt}}
}

type instruments struct {
	items         metric.Int64Counter
	itemDuration  metric.Float64Histogram
	batchDuration metric.Float64Histogram
	inFlight      metric.Int64ObservableUpDownCounter
	retries       metric.Int64Counter
	limit         metric.Int64ObservableGauge
	done          metric.Int64ObservableGauge
	planned       metric.Int64ObservableGauge

	outcomes                  [4][4]outcomeOpts // by itemOutcome, Class
	batchWritten, batchFailed metric.RecordOption
}

func newInstruments(m metric.Meter) (instruments, error) {
	var in instruments
	var errs [8]error
	in.items, errs[0] = m.Int64Counter(MetricItems, metric.WithUnit("{item}"),
		metric.WithDescription("Items whose enrichment ended, by outcome and error class."))
	in.itemDuration, errs[1] = m.Float64Histogram(MetricItemDuration, metric.WithUnit("s"),
		metric.WithDescription("Time to enrich one item, retries included."),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	in.batchDuration, errs[2] = m.Float64Histogram(MetricBatchDuration, metric.WithUnit("s"),
		metric.WithDescription("Time from a batch's first enrichment to the end of its write."),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	in.inFlight, errs[3] = m.Int64ObservableUpDownCounter(MetricInFlight, metric.WithUnit("{item}"),
		metric.WithDescription("Enrichments in flight."))
	in.retries, errs[4] = m.Int64Counter(MetricRetries, metric.WithUnit("{request}"),
		metric.WithDescription("HTTP requests resent for an item: retries and redirects."))
	in.limit, errs[5] = m.Int64ObservableGauge(MetricLimit, metric.WithUnit("{request}"),
		metric.WithDescription("Concurrency limit per upstream: requests in flight at most."))
	in.done, errs[6] = m.Int64ObservableGauge(MetricBatchesDone, metric.WithUnit("{batch}"),
		metric.WithDescription("Batches of the run written, those of resumed runs included."))
	in.planned, errs[7] = m.Int64ObservableGauge(MetricBatchesPlanned, metric.WithUnit("{batch}"),
		metric.WithDescription("Batches the run is capped at; 0 for no cap."))
	if err := errors.Join(errs[:]...); err != nil {
		return in, errors.Join(errors.New("otelenrich: create instruments"), err)
	}
	for o := range itemOutcome(len(outcomeNames)) {
		for c := range 4 {
			set := attribute.NewSet(AttrOutcome.String(o.String()), AttrClass.String(batchenrich.Class(c).String()))
			if o == enriched {
				set = attribute.NewSet(AttrOutcome.String(o.String()))
			}
			in.outcomes[o][c] = newOutcomeOpts(set)
		}
	}
	in.batchWritten = metric.WithAttributeSet(attribute.NewSet(AttrBatchOutcome.String("written")))
	in.batchFailed = metric.WithAttributeSet(attribute.NewSet(AttrBatchOutcome.String("failed")))
	return in, nil
}

// outcome returns the measurement options for an item's outcome and class.
func (in *instruments) outcome(o itemOutcome, c batchenrich.Class) outcomeOpts {
	if c < 0 || int(c) >= len(in.outcomes[o]) {
		return newOutcomeOpts(attribute.NewSet(AttrOutcome.String(o.String()), AttrClass.String(c.String())))
	}
	return in.outcomes[o][c]
}
