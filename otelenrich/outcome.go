package otelenrich

import "github.com/batchenrich/batchenrich"

// itemOutcome is what became of an item, the value of AttrOutcome.
type itemOutcome int

const (
	enriched itemOutcome = iota // the Enricher returned a result
	failed                      // it returned an error, counted as failed
	canceled                    // the batch's context ended first; not a failure
	panicked                    // it panicked (the error wraps a *batchenrich.PanicError)
)

var outcomeNames = [...]string{enriched: "enriched", failed: "failed", canceled: "canceled", panicked: "panicked"}

// String returns "enriched", "failed", "canceled" or "panicked".
func (o itemOutcome) String() string { return outcomeNames[o] }

// outcomeOf says what became of the item d describes, as
// batchenrich.TraceItem documents it.
func outcomeOf(d batchenrich.TraceItem) itemOutcome {
	switch {
	case d.Canceled:
		return canceled
	case d.Err == nil:
		return enriched
	case hasPanic(d.Err):
		return panicked
	}
	return failed
}

// hasPanic reports whether err's tree holds a *batchenrich.PanicError. It
// walks the tree as errors.As does, Unwrap() error and Unwrap() []error
// (As methods aside: the Runner's errors have none), without errors.As's
// allocation per failed item.
func hasPanic(err error) bool {
	for err != nil {
		switch e := err.(type) {
		case *batchenrich.PanicError:
			return true
		case interface{ Unwrap() []error }:
			for _, err := range e.Unwrap() {
				if hasPanic(err) {
					return true
				}
			}
			return false
		case interface{ Unwrap() error }:
			err = e.Unwrap()
		default:
			return false
		}
	}
	return false
}
