package main

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/batchenrich/batchenrich/batchenrichtest"
)

// TestPrintSinkConformance runs printSink through batchenrichtest.TestSink.
// What it stores is what it prints: each item's last line, keyed by id.
func TestPrintSinkConformance(t *testing.T) {
	batchenrichtest.TestSink(t, batchenrichtest.SinkHarness[[]string, string]{
		New: func(t *testing.T) batchenrichtest.SinkFixture[[]string, string] {
			var out bytes.Buffer
			return batchenrichtest.SinkFixture[[]string, string]{
				Sink:   printSink(&out),
				Stored: func(t *testing.T) []batchenrichtest.Stored { return printed(t, out.String()) },
			}
		},
		Item:  func(i int) []string { return []string{strconv.Itoa(i + 1), fmt.Sprintf("word%d", i+1)} },
		Value: func(i int) string { return fmt.Sprintf("WORD%d", i+1) },
		Key:   func(rec []string) string { return rec[0] },
	})
}

// printed reads printSink's output back: per id, the batch and failure of
// its last line.
func printed(t *testing.T, out string) []batchenrichtest.Stored {
	t.Helper()
	last := map[string]batchenrichtest.Stored{}
	var order []string
	for line := range strings.Lines(out) {
		var s batchenrichtest.Stored
		var rest string
		if _, err := fmt.Sscanf(line, "batch %d  %s", &s.Batch, &rest); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		switch fields := strings.Fields(line); {
		case rest == "id" && len(fields) >= 4:
			s.Key = fields[3]
		case rest == "row" && len(fields) >= 4 && strings.Contains(line, "  FAILED: "):
			s.Key, s.Failed = strings.TrimPrefix(fields[3], "["), true
		default:
			t.Fatalf("line %q is neither a result nor a failure", line)
		}
		if _, ok := last[s.Key]; !ok {
			order = append(order, s.Key)
		}
		last[s.Key] = s
	}
	stored := make([]batchenrichtest.Stored, 0, len(order))
	for _, k := range order {
		stored = append(stored, last[k])
	}
	return stored
}
