package main

import (
	"testing"
	"time"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/sqlbatch"
)

// The ETA of a running partitioned run assumes each unfinished partition
// holds as many items as the finished ones read on average, at the run's
// rate; it is unknown before a partition finished, and for a run that is
// not running or not partitioned.
func TestETA(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	part := func(read int, done bool) sqlbatch.PartitionStatus {
		return sqlbatch.PartitionStatus{Done: done, Counts: batchenrich.RunCounts{Read: read}}
	}
	st := sqlbatch.RunStatus{State: batchenrich.StateRunning, Started: t0, Updated: t0.Add(10 * time.Second),
		Counts:     batchenrich.RunCounts{Read: 1000},
		Partitions: []sqlbatch.PartitionStatus{part(400, true), part(300, false), part(300, false)}}
	// 100 items/s; 100 + 100 items left.
	if d, ok := eta(st); !ok || d != 2*time.Second {
		t.Fatalf("eta = %v, %v; want 2s", d, ok)
	}
	if r, ok := rate(st.Counts, st.Started, st.Updated); !ok || r != 100 {
		t.Fatalf("rate = %v, %v", r, ok)
	}
	for name, f := range map[string]func(*sqlbatch.RunStatus){
		"no partition done": func(s *sqlbatch.RunStatus) { s.Partitions[0].Done = false },
		"done":              func(s *sqlbatch.RunStatus) { s.State = batchenrich.StateDone },
		"unpartitioned":     func(s *sqlbatch.RunStatus) { s.Partitions = s.Partitions[:1] },
		"nothing read":      func(s *sqlbatch.RunStatus) { s.Counts.Read = 0 },
		"behind":            func(s *sqlbatch.RunStatus) { s.Partitions[1].Counts.Read, s.Partitions[2].Counts.Read = 500, 450 },
	} {
		s := st
		s.Partitions = append([]sqlbatch.PartitionStatus(nil), st.Partitions...)
		f(&s)
		if d, ok := eta(s); ok {
			t.Errorf("%s: eta = %v, want unknown", name, d)
		}
	}
	if got := failures(batchenrich.RunCounts{Failed: 12, FailedTransient: 4, FailedPermanent: 7}); got != "12 (T4 P7 U1)" {
		t.Errorf("failures = %q", got)
	}
}
