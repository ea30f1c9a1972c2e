package seedjob

import (
	"encoding/json"
	"testing"
)

// TestFieldsAreDataInJSON checks that Fields names every field of Data as
// its JSON does, in declaration order, with its value.
func TestFieldsAreDataInJSON(t *testing.T) {
	t.Parallel()
	d := Data{SourceRows: 1, ExpectedRows: 2, StoredRows: 3, MissingRows: 4,
		SuccessfulHTTPCalls: 5, ValidRows: 6, InvalidRows: 7, MaxBatchNumber: 8}
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]int
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	fields := d.Fields()
	if len(fields) != len(want) {
		t.Fatalf("Fields() has %d fields, Data's JSON %d: %s", len(fields), len(want), b)
	}
	for i, f := range fields {
		if want[f.Name] != f.Value || f.Value != i+1 {
			t.Errorf("field %d: %s = %d, JSON %s", i, f.Name, f.Value, b)
		}
	}
}
