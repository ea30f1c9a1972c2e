// Package harness runs contenders of the seed job against the same database
// and profile API and checks that each did the whole job.
//
// A contender is any implementation of the job (a baseline, or the library)
// behind one function, Contender. The harness prepares a throw-away schema,
// seeds the source rows before each run, times nothing but the contender
// call, and verifies the stored rows afterwards.
package harness

import (
	"context"
	"errors"
	"time"
)

// Config is what a contender is asked to do. The source table holds Rows
// travelers for ExecutionID; the contender must enrich and store the first
// min(Rows, BatchSize×MaxBatches) of them (by traveler_id), with the batch
// number of the BatchSize window each came from.
type Config struct {
	Rows        int    `json:"rows"`
	BatchSize   int    `json:"batch_size"`
	MaxBatches  int    `json:"max_batches"` // 0: no cap
	Concurrency int    `json:"concurrency"`
	TargetURL   string `json:"target_url"`   // httpbin-compatible base URL
	DatabaseURL string `json:"database_url"` // lib/pq URL with search_path set
	ExecutionID string `json:"execution_id"`
}

// Expected is the number of rows a run of c must store.
func (c Config) Expected() int {
	if c.MaxBatches > 0 && c.BatchSize*c.MaxBatches < c.Rows {
		return c.BatchSize * c.MaxBatches
	}
	return c.Rows
}

// Batches is the number of windows a run of c covers.
func (c Config) Batches() int {
	return (c.Expected() + c.BatchSize - 1) / c.BatchSize
}

// Stats is what a contender reports about its own run. The harness measures
// time and checks the rows itself; these figures are for display.
type Stats struct {
	Written int `json:"written"` // rows the contender says it stored
	Batches int `json:"batches"` // batches (windows) it processed

	// Phase, if set, is the contender's own timing of its processing
	// phase, without one-off setup (opening pools, creating tables).
	Phase time.Duration `json:"phase_ns,omitempty"`
	// Detail is a free-form breakdown for display.
	Detail string `json:"detail,omitempty"`
}

// Contender performs the job described by cfg once and returns when every
// row is stored. It must open and close its own resources (database pool,
// HTTP transport) so that runs do not share state.
type Contender func(ctx context.Context, cfg Config) (Stats, error)

// ErrNotWired is returned by a contender slot whose implementation does not
// exist yet. The harness reports it and skips the contender; it never
// produces a figure.
var ErrNotWired = errors.New("contender not wired")

// Named is a contender with its name.
type Named struct {
	Name string
	Run  Contender
	// Probe marks a measure of the machine rather than an implementation
	// of the job: it stores nothing, so the harness verifies the requests
	// the API served and the rows the probe reports (Stats.Written, its
	// count of checked responses) instead of the results table.
	Probe bool
	// Partitioned marks a contender that splits the run into key
	// partitions: each numbers its own batches, and a batch cap applies
	// per partition, so it runs only uncapped jobs (MaxBatches 0).
	Partitioned bool
	// Bulk marks a contender calling the API's bulk endpoint, so with at
	// least one request per profileapi.MaxBulkIDs rows rather than one
	// per row.
	Bulk bool
}

// Result is one timed run of a contender, as the harness saw it.
type Result struct {
	Contender string        `json:"contender"`
	Round     int           `json:"round"`
	Rows      int           `json:"rows"` // expected rows (verified)
	Elapsed   time.Duration `json:"elapsed_ns"`
	Conns     int64         `json:"conns"`    // HTTP connections the profile API accepted
	Requests  int64         `json:"requests"` // HTTP requests it served
	PeakRSSKB int64         `json:"peak_rss_kb,omitempty"`
	Stats     Stats         `json:"stats"`

	// CPU time spent during the run, where measured (0 otherwise).
	// ClientCPU is the contender's own process during its call (a child
	// process's, so isolated runs only); ServerCPU the harness process's
	// during the child's whole life, which is the in-process profile API's
	// (the harness itself only waits meanwhile); DBCPU the PostgreSQL
	// server's over the same span (see PostgresCPU: every database's).
	ClientCPU time.Duration `json:"client_cpu_ns,omitempty"`
	ServerCPU time.Duration `json:"server_cpu_ns,omitempty"`
	DBCPU     time.Duration `json:"db_cpu_ns,omitempty"`
	// MachineBusy and MachineIdle are the whole machine's busy and idle
	// CPU time over the same span as ServerCPU (MachineCPU): the busy time
	// the three above do not account for is other work on the machine.
	MachineBusy time.Duration `json:"machine_busy_ns,omitempty"`
	MachineIdle time.Duration `json:"machine_idle_ns,omitempty"`
}

// TotalCPU is the CPU time the run cost the machine: client, API server
// and PostgreSQL.
func (r Result) TotalCPU() time.Duration { return r.ClientCPU + r.ServerCPU + r.DBCPU }

// OtherCPU is the machine's busy time during the run that neither the
// client, the API server nor PostgreSQL account for (0 if not measured).
func (r Result) OtherCPU() time.Duration {
	if r.MachineBusy == 0 {
		return 0
	}
	return max(0, r.MachineBusy-r.TotalCPU())
}

// IdleShare is the machine's idle share of its CPU time during the run
// (0 if not measured).
func (r Result) IdleShare() float64 {
	if t := r.MachineBusy + r.MachineIdle; t > 0 {
		return float64(r.MachineIdle) / float64(t)
	}
	return 0
}

// PerRow is d divided by the run's rows.
func (r Result) PerRow(d time.Duration) time.Duration {
	if r.Rows <= 0 {
		return 0
	}
	return d / time.Duration(r.Rows)
}

// RowsPerSecond is the run's throughput.
func (r Result) RowsPerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Rows) / r.Elapsed.Seconds()
}
