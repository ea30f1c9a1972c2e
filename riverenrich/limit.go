package riverenrich

import (
	"context"

	"golang.org/x/sync/semaphore"

	"github.com/batchenrich/batchenrich"
)

// limited returns an Enricher that calls enr while holding one of sem's
// slots (Config.Concurrency: the bound over every partition this process
// works on), waiting for one first or for ctx to end. For a BulkEnricher
// it is one too, each EnrichBulk call holding one slot for its whole
// group. It is a batchenrich.Checker checking enr, when enr is one, so
// that the Runner checks enr before any work as it would unwrapped, a
// batchenrich.ConnUser giving enr's connections, and a
// batchenrich.Describer describing itself as enr does (the run's
// definition is the same as unwrapped); it hides enr's other optional
// interfaces.
func limited[T, R any](sem *semaphore.Weighted, enr batchenrich.Enricher[T, R]) batchenrich.Enricher[T, R] {
	one := limitedOne[T, R]{sem: sem, enr: enr}
	if b, ok := enr.(batchenrich.BulkEnricher[T, R]); ok {
		return limitedBulk[T, R]{limitedOne: one, b: b}
	}
	return one
}

type limitedOne[T, R any] struct {
	sem *semaphore.Weighted
	enr batchenrich.Enricher[T, R]
}

func (e limitedOne[T, R]) Enrich(ctx context.Context, item T) (R, error) {
	if err := e.sem.Acquire(ctx, 1); err != nil {
		var zero R
		return zero, err
	}
	defer e.sem.Release(1)
	return e.enr.Enrich(ctx, item)
}

// Check checks enr when it is a batchenrich.Checker.
func (e limitedOne[T, R]) Check(ctx context.Context) error { return check(ctx, e.enr) }

// ConnUse returns enr's when it is a batchenrich.ConnUser (one holding
// database connections), so that the Runner counts its connections as it
// would unwrapped; nil otherwise.
func (e limitedOne[T, R]) ConnUse(o batchenrich.Options) []batchenrich.ConnUse {
	return connUse(e.enr, o)
}

// Describe returns enr's description when it is a batchenrich.Describer,
// else "" (which a run's definition leaves out, as an Enricher that is no
// Describer).
func (e limitedOne[T, R]) Describe() string {
	if d, ok := e.enr.(batchenrich.Describer); ok {
		return d.Describe()
	}
	return ""
}

// connUse returns c's ConnUse when c is a batchenrich.ConnUser.
func connUse(c any, o batchenrich.Options) []batchenrich.ConnUse {
	if cu, ok := c.(batchenrich.ConnUser); ok {
		return cu.ConnUse(o)
	}
	return nil
}

// check calls c's Check when c is a batchenrich.Checker.
func check(ctx context.Context, c any) error {
	if ch, ok := c.(batchenrich.Checker); ok {
		return ch.Check(ctx)
	}
	return nil
}

type limitedBulk[T, R any] struct {
	limitedOne[T, R]
	b batchenrich.BulkEnricher[T, R]
}

func (e limitedBulk[T, R]) BulkSize() int { return e.b.BulkSize() }

func (e limitedBulk[T, R]) EnrichBulk(ctx context.Context, items []T) ([]R, []error) {
	if err := e.sem.Acquire(ctx, 1); err != nil {
		errs := make([]error, len(items))
		for i := range errs {
			errs[i] = err
		}
		return nil, errs
	}
	defer e.sem.Release(1)
	return e.b.EnrichBulk(ctx, items)
}
