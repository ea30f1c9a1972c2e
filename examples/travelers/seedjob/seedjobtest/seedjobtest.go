// Package seedjobtest helps the tests of the seed job's examples run
// batchenrichtest's conformance suites on their components: the
// travelers of a test execution, and what traveler_batch_results holds
// of them.
package seedjobtest

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/batchenrich/batchenrich/batchenrichtest"
	"github.com/batchenrich/batchenrich/examples/travelers/seedjob"
)

// ExecutionID is the execution the conformance tests read and write.
const ExecutionID = "conf"

// Traveler is the i-th traveler (from 0) of ExecutionID, as seedjob.Seed
// stores it.
func Traveler(i int) seedjob.Traveler {
	return seedjob.Traveler{ExecutionID: ExecutionID, TravelerID: int64(i + 1), TravelerName: fmt.Sprintf("Traveler %d", i+1)}
}

// Travelers returns travelers 0..n-1 of ExecutionID (Traveler).
func Travelers(n int) []seedjob.Traveler {
	out := make([]seedjob.Traveler, n)
	for i := range out {
		out[i] = Traveler(i)
	}
	return out
}

// Profile is the profile of Traveler(i): seedjob.Transform of a 200
// answer echoing its id, for batchenrichtest.SinkHarness.Value.
func Profile(i int) seedjob.Profile {
	t := Traveler(i)
	body, _ := json.Marshal(map[string]any{"args": map[string]string{"traveler_id": fmt.Sprint(t.TravelerID)}})
	return seedjob.Transform(t, 200, body)
}

// Poison is Traveler(i) with a name PostgreSQL refuses (a NUL byte in
// TEXT), for batchenrichtest.SinkHarness.Poison on PostgreSQL; SQLite
// stores it.
func Poison(i int) seedjob.Traveler {
	t := Traveler(i)
	t.TravelerName = "poison\x00"
	return t
}

// Stored lists the rows of traveler_batch_results of ExecutionID, for
// batchenrichtest.SinkFixture.Stored: keyed as seedjob.Traveler.Key, with
// the batch_number, failed where is_valid is false.
func Stored(t *testing.T, db *sqlx.DB) []batchenrichtest.Stored {
	t.Helper()
	var rows []struct {
		ID    int64 `db:"traveler_id"`
		Batch int   `db:"batch_number"`
		Valid bool  `db:"is_valid"`
	}
	if err := db.Select(&rows, db.Rebind(`SELECT traveler_id, batch_number, is_valid
		FROM traveler_batch_results WHERE execution_id = ?`), ExecutionID); err != nil {
		t.Fatal(err)
	}
	out := make([]batchenrichtest.Stored, len(rows))
	for i, r := range rows {
		out[i] = batchenrichtest.Stored{Key: seedjob.Traveler{TravelerID: r.ID}.Key(), Batch: r.Batch, Failed: !r.Valid}
	}
	return out
}
