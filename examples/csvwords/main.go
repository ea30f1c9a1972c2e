// Command csvwords shows batchenrich with a Source, Enricher and Sink of
// your own: it reads a CSV file (or a built-in sample) in batches of three
// rows, "enriches" each row concurrently, and prints each batch.
//
//	go run ./examples/csvwords [file.csv]
package main

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/batchenrich/batchenrich"
)

const sample = "id,word\n1,batch\n2,enrich\n3,order\n4,bounded\n5,cursor\n6,resume\n7,sink\n"

func main() {
	in := io.Reader(strings.NewReader(sample))
	if len(os.Args) > 1 {
		f, err := os.Open(os.Args[1])
		if err != nil {
			fmt.Fprintln(os.Stderr, "csvwords:", err)
			os.Exit(1)
		}
		defer f.Close()
		in = f
	}
	r := csv.NewReader(in)
	r.FieldsPerRecord = -1              // a bad row is the enricher's to report
	if _, err := r.Read(); err != nil { // header
		fmt.Fprintln(os.Stderr, "csvwords: reading header:", err)
		os.Exit(1)
	}

	// Source: a CSV reader streams forward, so the cursor is the row count.
	src := batchenrich.SourceFunc[[]string](func(ctx context.Context, after batchenrich.Cursor, limit int) ([]([]string), batchenrich.Cursor, error) {
		done, _ := strconv.Atoi(string(after))
		var rows [][]string
		for len(rows) < limit {
			rec, err := r.Read()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, after, err
			}
			rows = append(rows, rec)
		}
		return rows, batchenrich.Cursor(strconv.Itoa(done + len(rows))), nil
	})
	// Enricher: one call per row, run concurrently within a batch.
	enr := batchenrich.EnricherFunc[[]string, string](func(ctx context.Context, rec []string) (string, error) {
		if len(rec) != 2 {
			return "", batchenrich.Permanent(fmt.Errorf("want 2 fields, got %d", len(rec)))
		}
		return strings.ToUpper(rec[1]) + " (" + strconv.Itoa(len(rec[1])) + " letters)", nil
	})
	// Sink: receives each batch whole, in order, failures included.
	sink := batchenrich.SinkFunc[[]string, string](func(ctx context.Context, b batchenrich.Batch[[]string, string]) error {
		for _, res := range b.Results {
			if res.Err != nil {
				fmt.Printf("batch %d  row %v  FAILED: %v\n", b.Number, res.Item, res.Err)
				continue
			}
			fmt.Printf("batch %d  id %s  %s\n", b.Number, res.Item[0], res.Value)
		}
		return nil
	})

	runner, err := batchenrich.New[[]string, string](src, enr, sink, batchenrich.Options{BatchSize: 3, Concurrency: 3})
	if err != nil {
		fmt.Fprintln(os.Stderr, "csvwords:", err)
		os.Exit(1)
	}
	rep, err := runner.Run(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "csvwords:", err)
		os.Exit(1)
	}
	fmt.Printf("%d rows in %d batches, %d failed\n", rep.Written, rep.BatchesRun, rep.Failed)
}
