package main

import (
	"context"
	"testing"

	"github.com/batchenrich/batchenrich/internal/testdb"
)

// TestOverlapFlag runs the job with -overlap: the same rows as strict
// order, and the summary says the mode.
func TestOverlapFlag(t *testing.T) {
	for _, k := range testdb.Kinds {
		t.Run(string(k), func(t *testing.T) {
			args := []string{"-dsn", dsnFor(t, k), "-seed-rows", "450", "-batch-size", "50", "-max-batches", "8", "-overlap", "-json", "-execution-id", "overlap-1"}
			code, stdout, stderr := program(t, context.Background(), args...)
			if code != exitOK {
				t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
			}
			s := summaryOf(t, stdout)
			want := Data{SourceRows: 450, ExpectedRows: 400, StoredRows: 400, SuccessfulHTTPCalls: 400,
				ValidRows: 400, MaxBatchNumber: 8}
			if s.Status != "ok" || s.Data != want || s.Execution.BatchesRun != 8 ||
				s.Configured != (Configured{BatchSize: 50, MaxBatches: 8, Concurrency: 25, Overlap: true}) {
				t.Fatalf("summary = %+v", s)
			}
		})
	}
}
