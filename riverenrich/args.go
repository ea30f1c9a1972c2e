package riverenrich

import (
	"encoding/json"

	"github.com/batchenrich/batchenrich"
)

// Kind is the River job kind of a partition job.
const Kind = "batchenrich_partition"

// PartitionArgs are the arguments of the River job that works on one
// partition of a run. Jobs are unique by run key and partition (River's
// UniqueOpts.ByArgs over the fields tagged river:"unique"), whatever
// their job: enqueueing a run twice inserts its jobs once, and a run key
// belongs to one job.
type PartitionArgs struct {
	// Job is the job the run belongs to (Config.Job) and Fingerprint its
	// definition's (Config.Fingerprint): only a worker of the same job
	// and fingerprint runs the partition.
	Job         string `json:"job"`
	Fingerprint string `json:"fingerprint,omitempty"`
	// Run is the run key (batchenrich.Durable.RunKey).
	Run string `json:"run" river:"unique"`
	// Partition is the partition's index, from 0.
	Partition int `json:"partition" river:"unique"`
	// Partitions is the run's partition count P.
	Partitions int `json:"partitions"`
	// Params are the enqueuer's parameters of the run, handed to the
	// worker's functions as Job.Params (for example a cap on batches).
	Params json.RawMessage `json:"params,omitempty"`
}

// Kind implements river.JobArgs.
func (PartitionArgs) Kind() string { return Kind }

// Job is what a worker knows of the partition job it works on.
type Job struct {
	// ID is the River job's id and Attempt its attempt, from 1.
	ID      int64
	Attempt int
	// Run is the run key and Partition the partition of it.
	Run       string
	Partition batchenrich.Partition
	// Params are PartitionArgs.Params, as enqueued.
	Params json.RawMessage
}
