package seedjob

import "strconv"

// Traveler is one row of traveler_batch_source.
type Traveler struct {
	ExecutionID  string `db:"execution_id"`
	TravelerID   int64  `db:"traveler_id"`
	TravelerName string `db:"traveler_name"`
}

// Key names the traveler in errors, progress events and (with
// otelenrich.Config.ItemKeys) spans: "traveler N".
func (t Traveler) Key() string { return "traveler " + strconv.FormatInt(t.TravelerID, 10) }
