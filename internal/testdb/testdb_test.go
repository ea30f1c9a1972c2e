package testdb

import "testing"

func TestOpen(t *testing.T) {
	for _, k := range Kinds {
		t.Run(string(k), func(t *testing.T) {
			db := Open(t, k)
			if _, err := db.Exec(`CREATE TABLE x (id INTEGER PRIMARY KEY)`); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec(`INSERT INTO x (id) VALUES (1)`); err != nil {
				t.Fatal(err)
			}
			var n int
			if err := db.Get(&n, `SELECT count(*) FROM x`); err != nil || n != 1 {
				t.Fatalf("count = %d, %v", n, err)
			}
		})
	}
}
