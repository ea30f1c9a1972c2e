package batchenrich

import "time"

// Report describes a run: what it did per batch and in total. Run returns it
// even when it fails, covering the batches done until then.
type Report struct {
	// Batches has one entry per batch this run processed (written or
	// failed), in order. Batches skipped on resume are not listed, nor,
	// with Options.Overlap, a batch abandoned because an earlier batch
	// stopped the run (its write failed, or it failed itself) before this
	// one was written, whether this one was still being enriched, had
	// failed, or was waiting for its write.
	Batches []BatchReport

	// BatchesRun counts batches written by this run.
	BatchesRun int
	// BatchesSkipped counts batches a resumed run found already committed.
	BatchesSkipped int
	// AlreadyDone is set when a durable run had nothing left to do: its
	// checkpoint said the Source was exhausted, or the batches committed
	// earlier already reached Options.MaxBatches. Run then did nothing.
	AlreadyDone bool
	// Atomic is set when this run wrote batches and committed each with
	// its checkpoint in one transaction (a CheckpointSink sharing the
	// CheckpointStore).
	Atomic bool

	// Totals over Batches.
	Read, Enriched, Failed, Written int

	// Limits sums up, per upstream, the concurrency limit changes the
	// Enricher reported with ReportLimitChange (httpenrich with
	// Config.Adaptive does), sorted by upstream; nil when none.
	Limits []UpstreamLimit

	// Started is when Run began, and Duration how long it took.
	Started  time.Time
	Duration time.Duration

	// Partitions holds, for a Runner of NewPartitioned of more than one
	// partition, each partition's Report, by index; nil for any other
	// Runner (NewPartitioned of 1 partition is an unpartitioned run, its
	// Report that of New's Runner). The fields above are
	// then the partitions' totals (BatchesRun, BatchesSkipped, Read,
	// Enriched, Failed, Written), AlreadyDone when every partition had
	// nothing left to do, Atomic when every partition that wrote batches
	// committed them atomically; Batches and Limits are each partition's,
	// in Partitions only.
	Partitions []Report
}

// sumPartitions sets r's totals from r.Partitions.
func (r *Report) sumPartitions() {
	r.AlreadyDone = len(r.Partitions) > 0
	atomic, wrote := true, false
	for _, p := range r.Partitions {
		r.BatchesRun += p.BatchesRun
		r.BatchesSkipped += p.BatchesSkipped
		r.Read += p.Read
		r.Enriched += p.Enriched
		r.Failed += p.Failed
		r.Written += p.Written
		r.AlreadyDone = r.AlreadyDone && p.AlreadyDone
		if p.BatchesRun > 0 {
			wrote = true
			atomic = atomic && p.Atomic
		}
	}
	r.Atomic = wrote && atomic
}

// BatchReport describes one batch. In a batch that stopped the run
// (Options.StopAfterFailures, the all-failed stop, a panic, a Fatal
// error), Enriched and Failed count the items finished before the stop;
// items cut short by it count in neither.
type BatchReport struct {
	Number   int // batch number, from 1
	Read     int // items read from the Source
	Enriched int // items enriched without error
	Failed   int // items whose enrichment failed (a panic or a Fatal error included)
	Written  int // items handed to a Sink write that succeeded

	// ReadDuration is how long the run waited for the window: the whole
	// Source.Read when it was not prefetched, what was left of it when a
	// prefetch was still reading, and 0 when the prefetched window was
	// ready (read in the shadow of the previous batch).
	ReadDuration time.Duration
	// SourceDuration is the time spent in Source.Read for the window,
	// waited for or not.
	SourceDuration time.Duration
	EnrichDuration time.Duration // from the first enrichment started to the last finished
	WriteDuration  time.Duration // time in the Sink (and checkpoint) write
}

func (r *Report) add(b BatchReport) {
	r.Batches = append(r.Batches, b)
	r.Read += b.Read
	r.Enriched += b.Enriched
	r.Failed += b.Failed
	r.Written += b.Written
}
