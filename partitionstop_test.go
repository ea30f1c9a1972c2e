package batchenrich_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/batchenrichtest"
)

// stopOne is an in-memory store on which an operator asked partition 1 of
// run "r" alone to stop, once it had committed its batch 2 (as when the
// others had recorded nothing yet when the stop was requested). ended is
// closed when partition 1 recorded its end; partition 1's end is then held
// (its Run does not return) until the two others recorded theirs, so that
// they must stop without waiting for partition 1's Run to return.
type stopOne struct {
	*batchenrichtest.Checkpoints
	mu          sync.Mutex
	p1Batch     int
	once        sync.Once
	ended       chan struct{}
	othersEnded chan struct{} // one send per other partition's end, buffered
}

func newStopOne() *stopOne {
	return &stopOne{Checkpoints: batchenrichtest.NewCheckpoints(), ended: make(chan struct{}), othersEnded: make(chan struct{}, 2)}
}

func (s *stopOne) Save(ctx context.Context, cp batchenrich.Checkpoint) error {
	if err := s.Checkpoints.Save(ctx, cp); err != nil {
		return err
	}
	switch {
	case cp.RunKey == "r#p1":
		s.mu.Lock()
		s.p1Batch = cp.Batch
		s.mu.Unlock()
		if cp.State == batchenrich.StateStopped {
			s.once.Do(func() { close(s.ended) })
			for range 2 {
				select {
				case <-s.othersEnded:
				case <-time.After(time.Minute): // a guard against a hang, not a bound
					return errors.New("the other partitions did not end while partition 1's Run was held")
				}
			}
		}
	case (cp.RunKey == "r#p0" || cp.RunKey == "r#p2") && cp.State != batchenrich.StateRunning:
		s.othersEnded <- struct{}{}
	}
	return nil
}

func (s *stopOne) StopRequested(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return key == "r#p1" && s.p1Batch >= 2
}

// A partition of an in-process NewPartitioned run that stops at an operator's
// request is no failure: the other partitions are not cancelled (their
// batches in flight are written and committed) but stop at their next
// batch boundary too, recorded as stopped by the request, and Run returns
// the stopped partition's ErrStopRequested.
func TestPartitionedStopRequestStopsTheOthersAtABatchBoundary(t *testing.T) {
	t.Parallel()
	store := newStopOne()
	var (
		mu      sync.Mutex
		written = map[int]int{} // partition → items written
	)
	enr := batchenrich.EnricherFunc[item, int](func(ctx context.Context, i item) (int, error) { return int(i), nil })
	pr, err := batchenrich.NewPartitioned(3, modSource(3000), enr, func(p batchenrich.Partition) (batchenrich.Sink[item, int], error) {
		return batchenrich.SinkFunc[item, int](func(ctx context.Context, b batchenrich.Batch[item, int]) error {
			if p.Index != 1 && b.Number >= 2 {
				// Still writing when partition 1 stops.
				select {
				case <-store.ended:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			mu.Lock()
			written[p.Index] += len(b.Results)
			mu.Unlock()
			return nil
		}), nil
	}, batchenrich.Options{BatchSize: 10, Durable: &batchenrich.Durable{Store: store, RunKey: "r"}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = pr.Run(context.Background())
	if p, ok := failedPartition(err); !ok || p.Index != 1 || !errors.Is(err, batchenrich.ErrStopRequested) || errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want partition 1's stop request alone", err)
	}
	for p := range 3 {
		cp, err := store.Load(context.Background(), batchenrich.Partition{Index: p, Count: 3}.RunKey("r"))
		if err != nil {
			t.Fatal(err)
		}
		if cp.State != batchenrich.StateStopped || !strings.Contains(cp.LastError, "stop requested") || cp.Done {
			t.Errorf("partition %d recorded %s after batch %d (%q), want stopped by the request before its end", p, cp.State, cp.Batch, cp.LastError)
		}
		if cp.Counts.Written != 10*cp.Batch || written[p] != cp.Counts.Written {
			t.Errorf("partition %d: checkpoint after batch %d, %d written and committed, %d written: want every batch written committed", p, cp.Batch, cp.Counts.Written, written[p])
		}
	}
}
