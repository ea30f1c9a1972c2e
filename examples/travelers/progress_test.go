package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/batchenrich/batchenrich"
)

// TestProgressLinesNameTheWrittenBatch feeds the events of a run with
// Overlap (batch n+1 starts before batch n is written): each line names
// the batch written, not the one started.
func TestProgressLinesNameTheWrittenBatch(t *testing.T) {
	var out bytes.Buffer
	p := newProgress(&out, 3, 30, 0)
	events := make(chan event, 10)
	for _, ev := range []event{
		{Kind: evBatchStarted, Batch: 1},
		{Kind: evBatchStarted, Batch: 2},
		{Kind: evBatchWritten, Batch: 1, Stats: batchenrich.BatchReport{Written: 10}},
		{Kind: evBatchStarted, Batch: 3},
		{Kind: evBatchWritten, Batch: 2, Stats: batchenrich.BatchReport{Written: 10}},
		{Kind: evBatchWritten, Batch: 3, Stats: batchenrich.BatchReport{Written: 10}},
	} {
		events <- ev
	}
	close(events)
	p.follow(events)
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		got = append(got, strings.Join(strings.Fields(l)[:4], " "))
	}
	want := []string{"batch 1/3 written 10/30", "batch 2/3 written 20/30", "batch 3/3 written 30/30"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("lines %q, want %q\n%s", got, want, out.String())
	}
}
