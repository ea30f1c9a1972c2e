package batchenrich

// Batch is one window of items with their enrichment results, as handed to a
// Sink.
type Batch[T, R any] struct {
	// Number is the batch number, starting at 1 for the first batch of a
	// run. A resumed run continues the numbering of the run it resumes.
	Number int

	// After is the Source position this batch was read from (the Cursor
	// of the previous batch), and Next the position just after its last
	// item. A checkpoint taken after this batch records Next.
	After, Next Cursor

	// Partition is the Runner's Options.Partition: the key partition of
	// a split run this batch belongs to (Number counts within it). The
	// zero value for an unpartitioned run.
	Partition Partition

	// Results holds one entry per item, in Source order.
	Results []Result[T, R]

	// Replay is the number of the replay the batch belongs to (see
	// Replay), 0 in an ordinary run. A replay numbers its batches from 1
	// in a sequence of its own, while its items belong to batches of the
	// run it replays: a Sink that stores each item's batch number keeps
	// the stored one when Replay is set (sqlbatch.Sink does).
	Replay int
}

// Failed reports how many results of the batch carry an error.
func (b Batch[T, R]) Failed() int {
	n := 0
	for i := range b.Results {
		if b.Results[i].Err != nil {
			n++
		}
	}
	return n
}

// Result is the outcome of enriching one item.
type Result[T, R any] struct {
	// Index is the item's position in its batch, from 0.
	Index int
	// Item is the item as read from the Source.
	Item T
	// Value is the enrichment result; the zero value when Err is set.
	Value R
	// Err is nil for an enriched item and an *ItemError for a failed one.
	Err error
}

// OK reports whether the item was enriched without error.
func (r Result[T, R]) OK() bool { return r.Err == nil }
