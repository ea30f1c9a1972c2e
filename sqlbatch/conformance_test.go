package sqlbatch_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/batchenrichtest"
	"github.com/batchenrich/batchenrich/internal/testdb"
	"github.com/batchenrich/batchenrich/sqlbatch"
)

func TestConformance(t *testing.T) {
	for _, k := range testdb.AllKinds {
		t.Run(string(k), func(t *testing.T) {
			t.Parallel()
			for _, paging := range []sqlbatch.Paging{sqlbatch.PageByKey, sqlbatch.PageByOffset} {
				t.Run(fmt.Sprintf("Source/paging=%d", paging), func(t *testing.T) {
					batchenrichtest.TestSource(t, batchenrichtest.SourceHarness[Traveler]{
						New: func(t *testing.T, n int) (func() batchenrich.Source[Traveler], []Traveler) {
							db := testdb.Open(t, k)
							createSource(t, db, n)
							var want []Traveler
							for i := 1; i <= n; i++ {
								want = append(want, Traveler{ExecutionID: "e1", TravelerID: int64(i), Name: fmt.Sprintf("traveler %d", i)})
							}
							return func() batchenrich.Source[Traveler] { return travelerSource(t, db, "e1", paging) }, want
						},
					})
				})
			}
			t.Run("Sink", func(t *testing.T) {
				batchenrichtest.TestSink(t, batchenrichtest.SinkHarness[Traveler, Enriched]{
					New: func(t *testing.T) batchenrichtest.SinkFixture[Traveler, Enriched] {
						db := testdb.Open(t, k)
						createResults(t, k, db)
						store := checkpointStore(t, db)
						return batchenrichtest.SinkFixture[Traveler, Enriched]{
							Sink:        resultsSink(t, db),
							Checkpoints: store,
							Stored: func(t *testing.T) []batchenrichtest.Stored {
								var out []batchenrichtest.Stored
								for _, r := range readResults(t, db) {
									out = append(out, batchenrichtest.Stored{
										Key:    Traveler{ExecutionID: r.ExecutionID, TravelerID: r.TravelerID}.Key(),
										Batch:  r.BatchNumber,
										Failed: !r.IsValid,
									})
								}
								return out
							},
						}
					},
					Item:  func(i int) Traveler { return Traveler{ExecutionID: "e1", TravelerID: int64(i + 1), Name: "t"} },
					Value: func(i int) Enriched { return Enriched{Score: i} },
					Key:   Traveler.Key,
					Poison: func(i int) Traveler {
						return Traveler{ExecutionID: "e1", TravelerID: int64(i + 1), Name: poisonName}
					},
				})
			})
			t.Run("CheckpointStore", func(t *testing.T) {
				batchenrichtest.TestCheckpointStore(t, batchenrichtest.CheckpointHarness{
					New: func(t *testing.T) func() batchenrich.CheckpointStore {
						db := testdb.Open(t, k)
						return func() batchenrich.CheckpointStore { return checkpointStore(t, db) }
					},
				})
			})
		})
	}
}

func checkpointStore(t testing.TB, db *sqlx.DB) *sqlbatch.CheckpointStore {
	t.Helper()
	s, err := sqlbatch.NewCheckpointStore(db, sqlbatch.CheckpointConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTable(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}
