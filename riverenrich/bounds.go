package riverenrich

// The core's bounds and defaults that riverenrich checks or reports
// before a worker's Runner would (batchenrich documents them at
// Partition.Count, Options.Concurrency and Options.BatchSize;
// TestCoreBounds keeps them equal).
const (
	maxPartitions    = 1 << 12
	maxConcurrency   = 1 << 16
	defaultBatchSize = 100
)
