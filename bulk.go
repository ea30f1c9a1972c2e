package batchenrich

import (
	"context"
	"fmt"
)

// BulkEnricher is an optional ability of an Enricher: enriching many items
// in one call, for upstreams that take many keys per request (a bulk HTTP
// endpoint, a lookup in another table). The Runner finds it by type
// assertion, as it finds Checker; an Enricher without it is called once
// per item, as always.
//
// With a BulkEnricher, the Runner splits each batch, in Source order, into
// groups of at most BulkSize items and calls EnrichBulk once per group, at
// most Options.Concurrency calls at once (Concurrency then counts calls,
// not items). Everything else is per item, as with Enrich: each item's
// value or error becomes its own Result, a failed item is recorded with
// its own reason and class (an *ItemError naming it), the failure
// policies, the all-failed stop and Replay count items, results reach the
// Sink in Source order, and a Tracer's item hooks are called for each
// item of a group (TraceItemStart for all of them before the call,
// TraceItemEnd after it). The call gets the group's context, not the
// items' contexts from TraceItemStart.
//
// A panic in EnrichBulk, or an answer of the wrong length, is the error
// of every item of the group; as with Enrich, a panic stops the run with
// an *ItemError (wrapping a *PanicError) naming the group's first item,
// and a wrong length, the program's fault, is a Fatal error that stops it
// too. Enrich is still used for single items outside a Runner and by
// wrappers that know nothing of bulk calls; it may call EnrichBulk with
// one item.
type BulkEnricher[T, R any] interface {
	Enricher[T, R]

	// BulkSize is the most items EnrichBulk is given in one call. New
	// asks for it once and refuses a BulkSize below 1.
	BulkSize() int

	// EnrichBulk enriches items, between 1 and BulkSize of them, and
	// returns one value and one error per item, in the order of items:
	// errs[i] non-nil fails items[i] alone (wrap it with Transient or
	// Permanent to classify it), otherwise values[i] is its result. A
	// call that failed as a whole sets every errs[i]. values may be nil
	// when every item failed, errs nil when none did. It is called
	// concurrently and must honour ctx like Enrich.
	EnrichBulk(ctx context.Context, items []T) (values []R, errs []error)
}

// setBulk finds out whether the Runner's Enricher is a BulkEnricher, and
// asks its BulkSize.
func (r *Runner[T, R]) setBulk() error {
	b, ok := r.enr.(BulkEnricher[T, R])
	if !ok {
		return nil
	}
	var n int
	if err := guarded(func() error { n = b.BulkSize(); return nil }); err != nil {
		return &ConfigError{Package: "batchenrich", Field: "enr", Reason: fmt.Sprintf("BulkEnricher %T: BulkSize", b), Err: err}
	}
	if n < 1 {
		return optionErr("enr", fmt.Sprintf("BulkEnricher %T: BulkSize() is %d, must be at least 1", b, n))
	}
	r.bulk, r.bulkSize = b, n
	return nil
}

// bulkGroup returns the enrichment of group g of batch num's items (items
// g×BulkSize up to the next group's) in one EnrichBulk call: it records
// each item's outcome with settle, calling the Tracer's item hooks around
// the call, and returns how many items were enriched and the first error
// that stops the batch.
func (st *run[T, R]) bulkGroup(num int, results []Result[T, R], items []T,
	settle func(int, R, error) (outcome, error)) func(context.Context, int) (int, error) {
	size := st.bulkSize
	var zero T
	_, keyed := any(zero).(Keyer)
	keyed = keyed || any(zero) == nil // as in traceItems
	return func(ctx context.Context, g int) (int, error) {
		lo, hi := g*size, min((g+1)*size, len(items))
		group := items[lo:hi]
		var ictxs []context.Context
		var keys []string
		if st.tracer != nil {
			ictxs, keys = make([]context.Context, len(group)), make([]string, len(group))
			for j := range group {
				i := lo + j
				var err error
				if keyed {
					if keys[j], err = itemKey(items[i]); err != nil {
						st.endCanceled(ictxs[:j], keys, num, lo)
						_, err = st.hookFailed(results, num, i, keys[j], "Keyer.Key", err)
						return 0, err
					}
				}
				if ictxs[j], err = st.itemStart(ctx, TraceItem{Batch: num, Index: i, Key: keys[j]}); err != nil {
					st.endCanceled(ictxs[:j], keys, num, lo)
					_, err = st.hookFailed(results, num, i, keys[j], "TraceItemStart", err)
					return 0, err
				}
			}
		}
		values, errs := st.callBulk(ctx, group)
		n := 0
		var first error
		for j := range group {
			i := lo + j
			out, err := settle(i, values[j], errs[j])
			if out == outEnriched {
				n++
			}
			if st.tracer != nil {
				res := &results[i]
				end := TraceItem{Batch: num, Index: i, Key: keys[j], Err: res.Err, Class: Classify(res.Err), Canceled: out == outCanceled}
				if perr := st.itemEnd(ictxs[j], end); perr != nil {
					_, err = st.hookFailed(results, num, i, keys[j], "TraceItemEnd", perr)
				}
			}
			if err != nil && first == nil {
				first = err
			}
		}
		return n, first
	}
}

// endCanceled ends the item spans started for the first len(ictxs) items
// of a group starting at index lo, whose call was never made.
func (st *run[T, R]) endCanceled(ictxs []context.Context, keys []string, num, lo int) {
	for j, ictx := range ictxs {
		_ = st.itemEnd(ictx, TraceItem{Batch: num, Index: lo + j, Key: keys[j], Canceled: true})
	}
}

// callBulk calls EnrichBulk for group and returns one value and one error
// per item: a panic, or an answer of the wrong length, is every item's
// error.
func (st *run[T, R]) callBulk(ctx context.Context, group []T) ([]R, []error) {
	var values []R
	var errs []error
	err := st.lim.acquire(ctx)
	if err == nil {
		defer st.lim.release()
		err = guarded(func() error { values, errs = st.bulk.EnrichBulk(ctx, group); return nil })
	}
	if err == nil && (values != nil && len(values) != len(group) || errs != nil && len(errs) != len(group)) {
		err = Fatal(fmt.Errorf("BulkEnricher %T: EnrichBulk returned %d values and %d errors for %d items", st.bulk, len(values), len(errs), len(group)))
	}
	if err == nil && values == nil {
		for _, e := range errs {
			if e == nil {
				err = Fatal(fmt.Errorf("BulkEnricher %T: EnrichBulk returned no values but not an error for every item", st.bulk))
				break
			}
		}
		if errs == nil {
			err = Fatal(fmt.Errorf("BulkEnricher %T: EnrichBulk returned neither values nor errors for %d items", st.bulk, len(group)))
		}
	}
	if err != nil {
		values, errs = nil, make([]error, len(group))
		for j := range errs {
			errs[j] = err
		}
	}
	if values == nil {
		values = make([]R, len(group))
	}
	if errs == nil {
		errs = make([]error, len(group))
	}
	return values, errs
}
