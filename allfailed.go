package batchenrich

import (
	"strconv"
	"strings"
)

// allFailedMinItems is the smallest batch that the all-failed stop applies
// to: a batch of at least this many items in which every item failed stops
// the run (see ErrAllFailed). Smaller batches, such as a short last
// window, are written as usual.
const allFailedMinItems = 5

// allFailedError is the cause of the *BatchError Run returns for a batch
// whose every item failed.
type allFailedError struct {
	items   int        // items in the batch, all failed
	reason  string     // the most common FailureReason
	count   int        // how many items failed for that reason
	example *ItemError // the first item that failed for that reason
	durable bool       // the run has a RunKey to resume with
}

func (e *allFailedError) Error() string {
	var b strings.Builder
	b.WriteString("all ")
	b.WriteString(strconv.Itoa(e.items))
	b.WriteString(" items failed; most common reason (")
	b.WriteString(strconv.Itoa(e.count))
	b.WriteString(" of them): ")
	b.WriteString(e.reason)
	b.WriteString("; the batch was not written: fix the cause and run again")
	if e.durable {
		b.WriteString(" with the same RunKey to resume from this batch")
	}
	b.WriteString(", or set Options.AllowAllFailed if whole batches may fail")
	return b.String()
}

func (e *allFailedError) Unwrap() []error { return []error{ErrAllFailed, e.example} }

// allFailed returns the error for a batch whose every result failed.
func allFailed[T, R any](results []Result[T, R], durable bool) error {
	e := &allFailedError{items: len(results), durable: durable}
	counts := make(map[string]int)
	for i := range results {
		ie, _ := results[i].Err.(*ItemError)
		if ie == nil {
			continue
		}
		r := FailureReason(ie)
		counts[r]++
		// On a tie, the reason that reached the count first wins.
		if c := counts[r]; c > e.count {
			e.reason, e.count, e.example = r, c, ie
		}
	}
	return e
}
