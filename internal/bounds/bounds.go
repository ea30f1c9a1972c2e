// Package bounds holds the bounds of the core's settings that sqlbatch
// checks too, so that both refuse alike.
package bounds

const (
	// Partitions bounds batchenrich.Partition.Count.
	Partitions = 1 << 12
	// Concurrency bounds batchenrich.Options.Concurrency.
	Concurrency = 1 << 16
)
