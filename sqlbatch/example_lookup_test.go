package sqlbatch_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/jmoiron/sqlx"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/batchenrichtest"
	"github.com/batchenrich/batchenrich/sqlbatch"
)

// Enrich orders with their customer's row from another table, one query
// per group of up to 100 orders ("WHERE customer_id IN (…)" on SQLite,
// "= ANY(…)" on PostgreSQL); an order whose customer has no row fails
// alone.
func ExampleNewLookup() {
	dir, err := os.MkdirTemp("", "lookup")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	db, err := sqlx.Open("sqlite", filepath.Join(dir, "shop.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	db.MustExec(`CREATE TABLE customers (customer_id INTEGER PRIMARY KEY, name TEXT NOT NULL, tier TEXT NOT NULL)`)
	db.MustExec(`INSERT INTO customers VALUES (1, 'Ada', 'gold'), (2, 'Grace', 'silver')`)

	type Order struct {
		ID         int
		CustomerID int
	}
	type Customer struct {
		CustomerID int    `db:"customer_id"`
		Name       string `db:"name"`
		Tier       string `db:"tier"`
	}
	lookup, err := sqlbatch.NewLookup[Order, Customer](db, sqlbatch.LookupConfig[Order]{
		Table:   "customers",
		Key:     "customer_id",
		ItemKey: func(o Order) any { return o.CustomerID },
	})
	if err != nil {
		log.Fatal(err)
	}

	orders := []Order{{ID: 10, CustomerID: 2}, {ID: 11, CustomerID: 3}, {ID: 12, CustomerID: 1}}
	sink := batchenrichtest.NewSink[Order, Customer]()
	r, err := batchenrich.New(batchenrichtest.NewSliceSource(orders), batchenrich.Enricher[Order, Customer](lookup), sink, batchenrich.Options{})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := r.Run(context.Background()); err != nil {
		log.Fatal(err)
	}
	for _, res := range sink.Results() {
		if res.Err != nil {
			fmt.Printf("order %d: failed: %s\n", res.Item.ID, batchenrich.FailureReason(res.Err))
			continue
		}
		fmt.Printf("order %d: %s (%s)\n", res.Item.ID, res.Value.Name, res.Value.Tier)
	}
	// Output:
	// order 10: Grace (silver)
	// order 11: failed: lookup: no row for the item's key
	// order 12: Ada (gold)
}
