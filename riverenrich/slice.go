package riverenrich

import (
	"context"
	"errors"
	"time"

	"github.com/batchenrich/batchenrich"
)

// errSliceEnd ends a job's Runner at a batch boundary.
var errSliceEnd = errors.New("slice ended")

// slice is a Source that refuses to read once its slice is over or its
// Client stops: the Runner then returns after writing the batch it is on
// (a window read ahead before the end is still worked on), so a slice
// ends between batches, re-enriching nothing.
type slice[T any] struct {
	src   batchenrich.Source[T]
	end   time.Time
	drain <-chan struct{}
}

func (s *slice[T]) Read(ctx context.Context, after batchenrich.Cursor, limit int) ([]T, batchenrich.Cursor, error) {
	select {
	case <-s.drain:
		return nil, after, errSliceEnd
	default:
	}
	if !time.Now().Before(s.end) {
		return nil, after, errSliceEnd
	}
	return s.src.Read(ctx, after, limit)
}

// Check checks the partition's Source when it is a batchenrich.Checker,
// so that the Runner checks it before any read, as it would unwrapped.
func (s *slice[T]) Check(ctx context.Context) error { return check(ctx, s.src) }

// ConnUse reports the connections the partition's Source holds when it
// is a batchenrich.ConnUser, so that the Runner checks its pool as it
// would unwrapped.
func (s *slice[T]) ConnUse(o batchenrich.Options) []batchenrich.ConnUse { return connUse(s.src, o) }

// Describe describes the partition's Source when it is a
// batchenrich.Describer, so that the run's definition recorded with its
// checkpoints is the same as unwrapped.
func (s *slice[T]) Describe() string {
	if d, ok := s.src.(batchenrich.Describer); ok {
		return d.Describe()
	}
	return ""
}

// described returns limited, an Enricher wrapping enr, describing itself
// as enr does when enr is a batchenrich.Describer (and keeping limited's
// BulkEnricher ability).
func described[T, R any](enr, limited batchenrich.Enricher[T, R]) batchenrich.Enricher[T, R] {
	d, ok := enr.(batchenrich.Describer)
	if !ok {
		return limited
	}
	if b, ok := limited.(batchenrich.BulkEnricher[T, R]); ok {
		return describedBulk[T, R]{BulkEnricher: b, Describer: d}
	}
	return describedEnricher[T, R]{Enricher: limited, Describer: d}
}

type describedEnricher[T, R any] struct {
	batchenrich.Enricher[T, R]
	batchenrich.Describer
}

type describedBulk[T, R any] struct {
	batchenrich.BulkEnricher[T, R]
	batchenrich.Describer
}

// Check checks the wrapped Enricher when it is a batchenrich.Checker.
func (d describedEnricher[T, R]) Check(ctx context.Context) error { return check(ctx, d.Enricher) }

// Check checks the wrapped Enricher when it is a batchenrich.Checker.
func (d describedBulk[T, R]) Check(ctx context.Context) error { return check(ctx, d.BulkEnricher) }

// ConnUse returns the wrapped Enricher's connections.
func (d describedEnricher[T, R]) ConnUse(o batchenrich.Options) []batchenrich.ConnUse {
	return connUse(d.Enricher, o)
}

// ConnUse returns the wrapped Enricher's connections.
func (d describedBulk[T, R]) ConnUse(o batchenrich.Options) []batchenrich.ConnUse {
	return connUse(d.BulkEnricher, o)
}
