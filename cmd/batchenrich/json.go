package main

import (
	"encoding/json"
	"io"
	"time"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/redact"
	"github.com/batchenrich/batchenrich/sqlbatch"
)

// The -json output. Its field names are stable (see doc.go); fields may
// be added, never renamed or removed.

// runsJSON is the output of runs -json.
type runsJSON struct {
	Runs []runJSON `json:"runs"`
}

// runJSON is a run: the output of status -json, and each of runs -json.
type runJSON struct {
	RunKey         string          `json:"run_key"`
	Job            string          `json:"job"`
	State          string          `json:"state"`
	PartitionCount int             `json:"partition_count"`
	PartitionsDone int             `json:"partitions_done"`
	Counts         countsJSON      `json:"counts"`
	RatePerSecond  *float64        `json:"rate_per_second"`
	ETASeconds     *float64        `json:"eta_seconds"`
	Started        *time.Time      `json:"started"`
	Updated        *time.Time      `json:"updated"`
	Finished       *time.Time      `json:"finished"`
	LastError      string          `json:"last_error"`
	Partitions     []partitionJSON `json:"partitions"`
}

// partitionJSON is one partition of a run (the only one of an
// unpartitioned run).
type partitionJSON struct {
	Index         int        `json:"index"`
	RunKey        string     `json:"run_key"`
	State         string     `json:"state"`
	Batch         int        `json:"batch"`
	Done          bool       `json:"done"`
	Counts        countsJSON `json:"counts"`
	RatePerSecond *float64   `json:"rate_per_second"`
	Started       *time.Time `json:"started"`
	Updated       *time.Time `json:"updated"`
	Finished      *time.Time `json:"finished"`
	Host          string     `json:"host"`
	PID           int        `json:"pid"`
	Held          bool       `json:"held"`
	StopRequested bool       `json:"stop_requested"`
	LastError     string     `json:"last_error"`
}

// countsJSON is batchenrich.RunCounts.
type countsJSON struct {
	Batches         int `json:"batches"`
	Read            int `json:"read"`
	Enriched        int `json:"enriched"`
	Failed          int `json:"failed"`
	FailedTransient int `json:"failed_transient"`
	FailedPermanent int `json:"failed_permanent"`
	Written         int `json:"written"`
}

// stopJSON is the output of stop -json.
type stopJSON struct {
	RunKey    string `json:"run_key"`
	State     string `json:"state"`
	Requested int    `json:"requested"`
	Held      int    `json:"held"`
}

func toJSONs(runs []sqlbatch.RunStatus) []runJSON {
	out := make([]runJSON, 0, len(runs))
	for _, st := range runs {
		out = append(out, toJSON(st))
	}
	return out
}

func toJSON(st sqlbatch.RunStatus) runJSON {
	j := runJSON{RunKey: st.RunKey, Job: st.Job, State: string(st.State), PartitionCount: len(st.Partitions),
		PartitionsDone: partitionsDone(st), Counts: counts(st.Counts), Started: at(st.Started), Updated: at(st.Updated),
		Finished: at(st.Finished), LastError: redact.Text(st.LastError), Partitions: []partitionJSON{}}
	if r, ok := rate(st.Counts, st.Started, st.Updated); ok {
		j.RatePerSecond = &r
	}
	if d, ok := eta(st); ok {
		s := d.Seconds()
		j.ETASeconds = &s
	}
	for _, p := range st.Partitions {
		pj := partitionJSON{Index: p.Index, RunKey: p.RunKey, State: string(p.State), Batch: p.Batch, Done: p.Done,
			Counts: counts(p.Counts), Started: at(p.Started), Updated: at(p.Updated), Finished: at(p.Finished),
			Host: p.Host, PID: p.PID, Held: p.Held, StopRequested: p.StopRequested, LastError: redact.Text(p.LastError)}
		if r, ok := rate(p.Counts, p.Started, p.Updated); ok {
			pj.RatePerSecond = &r
		}
		j.Partitions = append(j.Partitions, pj)
	}
	return j
}

func counts(c batchenrich.RunCounts) countsJSON {
	return countsJSON{Batches: c.Batches, Read: c.Read, Enriched: c.Enriched, Failed: c.Failed,
		FailedTransient: c.FailedTransient, FailedPermanent: c.FailedPermanent, Written: c.Written}
}

// at is t in UTC, nil when zero (null in JSON).
func at(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// writeJSON writes v as one line of JSON.
func writeJSON(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}
