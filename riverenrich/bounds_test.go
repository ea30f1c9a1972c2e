package riverenrich

import (
	"context"
	"errors"
	"testing"

	"github.com/batchenrich/batchenrich"
)

// TestCoreBounds: riverenrich's copies of the core's bounds and default
// batch size are the core's: New accepts each bound and refuses one more,
// and fills in the default batch size.
func TestCoreBounds(t *testing.T) {
	src := batchenrich.SourceFunc[int](func(context.Context, batchenrich.Cursor, int) ([]int, batchenrich.Cursor, error) {
		return nil, "", nil
	})
	enr := batchenrich.EnricherFunc[int, int](func(_ context.Context, i int) (int, error) { return i, nil })
	sink := batchenrich.SinkFunc[int, int](func(context.Context, batchenrich.Batch[int, int]) error { return nil })
	newRunner := func(o batchenrich.Options) (*batchenrich.Runner[int, int], error) {
		return batchenrich.New(src, enr, sink, o)
	}
	for _, tc := range []struct {
		field     string
		at, above batchenrich.Options
	}{
		{"Partition.Count", batchenrich.Options{Partition: batchenrich.Partition{Count: maxPartitions}},
			batchenrich.Options{Partition: batchenrich.Partition{Count: maxPartitions + 1}}},
		{"Concurrency", batchenrich.Options{Concurrency: maxConcurrency}, batchenrich.Options{Concurrency: maxConcurrency + 1}},
	} {
		if _, err := newRunner(tc.at); err != nil {
			t.Errorf("%s at riverenrich's bound: %v", tc.field, err)
		}
		var ce *batchenrich.ConfigError
		if _, err := newRunner(tc.above); !errors.As(err, &ce) || ce.Field != tc.field {
			t.Errorf("%s above riverenrich's bound: err = %v, want a *ConfigError for %s", tc.field, err, tc.field)
		}
	}
	r, err := newRunner(batchenrich.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Options().BatchSize; got != defaultBatchSize {
		t.Errorf("core's default BatchSize = %d, riverenrich's = %d", got, defaultBatchSize)
	}
}
