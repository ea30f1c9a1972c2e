package batchenrichtest_test

import (
	"errors"
	"fmt"
	"testing"

	"go.uber.org/goleak"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/batchenrichtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// The suites pass against the kit's own fakes.

func TestSliceSourceConformance(t *testing.T) {
	batchenrichtest.TestSource(t, batchenrichtest.SourceHarness[int]{
		New: func(t *testing.T, n int) (func() batchenrich.Source[int], []int) {
			items := make([]int, n)
			for i := range items {
				items[i] = i * 3
			}
			return func() batchenrich.Source[int] { return batchenrichtest.NewSliceSource(items) }, items
		},
	})
}

func TestSinkConformance(t *testing.T) {
	batchenrichtest.TestSink(t, batchenrichtest.SinkHarness[int, string]{
		New: func(t *testing.T) batchenrichtest.SinkFixture[int, string] {
			s := batchenrichtest.NewSink[int, string]()
			s.FailItem = func(r batchenrich.Result[int, string]) error {
				if r.Item < 0 {
					return errors.New("poison")
				}
				return nil
			}
			return batchenrichtest.SinkFixture[int, string]{
				Sink: s,
				Stored: func(t *testing.T) []batchenrichtest.Stored {
					byKey := map[int]batchenrichtest.Stored{}
					for _, b := range s.Batches() {
						for _, r := range b.Results {
							byKey[r.Item] = batchenrichtest.Stored{Key: fmt.Sprint(r.Item), Batch: b.Number, Failed: r.Err != nil}
						}
					}
					var out []batchenrichtest.Stored
					for _, st := range byKey {
						out = append(out, st)
					}
					return out
				},
			}
		},
		Item:   func(i int) int { return i },
		Value:  func(i int) string { return fmt.Sprint("v", i) },
		Key:    func(item int) string { return fmt.Sprint(item) },
		Poison: func(i int) int { return -1 - i },
	})
}

func TestCheckpointsConformance(t *testing.T) {
	batchenrichtest.TestCheckpointStore(t, batchenrichtest.CheckpointHarness{
		New: func(t *testing.T) func() batchenrich.CheckpointStore {
			s := batchenrichtest.NewCheckpoints() // one in-memory storage, one instance
			return func() batchenrich.CheckpointStore { return s }
		},
	})
}
