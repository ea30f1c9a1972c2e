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
