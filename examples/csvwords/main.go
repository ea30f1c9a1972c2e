// Command csvwords shows batchenrich with a Source, Enricher and Sink of
// your own: it reads a CSV file (or a built-in sample) in batches of three
// rows, "enriches" each row concurrently, and prints each batch.
//
//	go run ./examples/csvwords [file.csv]
//
// CSVSource (source.go) is the model of a custom Source: its cursor is a
// byte offset, so that a run with Options.Durable resumes
// at the right row, and it honours its context.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"

	"github.com/batchenrich/batchenrich"
)

const sample = "id,word\n1,batch\n2,enrich\n3,order\n4,bounded\n5,cursor\n6,resume\n7,sink\n"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, batchenrich.Options{})
	stop()
	os.Exit(code)
}

// run is the program; opts adds to its Runner options (tests set
// checkpoints).
func run(ctx context.Context, args []string, stdout, stderr io.Writer, opts batchenrich.Options) int {
	var src *CSVSource
	switch len(args) {
	case 0:
		src = NewCSVSource(strings.NewReader(sample), int64(len(sample)))
	case 1:
		f, err := os.Open(args[0])
		if err != nil {
			fmt.Fprintln(stderr, "csvwords:", err)
			return 1
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			fmt.Fprintln(stderr, "csvwords:", err)
			return 1
		}
		src = NewCSVSource(f, st.Size())
	default:
		fmt.Fprintln(stderr, "usage: csvwords [file.csv]")
		return 2
	}

	// Enricher: one call per row, run concurrently within a batch.
	enr := batchenrich.EnricherFunc[[]string, string](func(ctx context.Context, rec []string) (string, error) {
		if len(rec) != 2 {
			return "", batchenrich.Permanent(fmt.Errorf("want 2 fields, got %d", len(rec)))
		}
		return strings.ToUpper(rec[1]) + " (" + strconv.Itoa(len(rec[1])) + " letters)", nil
	})
	sink := printSink(stdout)

	opts.BatchSize, opts.Concurrency = 3, 3
	runner, err := batchenrich.New[[]string, string](src, enr, sink, opts)
	if err != nil {
		fmt.Fprintln(stderr, "csvwords:", err)
		return 1
	}
	rep, err := runner.Run(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "csvwords:", err)
		return 1
	}
	fmt.Fprintf(stdout, "%d rows in %d batches, %d failed\n", rep.Written, rep.BatchesRun, rep.Failed)
	return 0
}

// printSink prints each batch to w, a line per row, failures included:
// the Sink receives each batch whole, in order. A batch written again (a
// resumed run) is printed again; its last lines are what count. With a
// cancelled context it prints nothing and returns the context's error, as
// the Sink contract asks.
func printSink(w io.Writer) batchenrich.Sink[[]string, string] {
	return batchenrich.SinkFunc[[]string, string](func(ctx context.Context, b batchenrich.Batch[[]string, string]) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		for _, res := range b.Results {
			if res.Err != nil {
				fmt.Fprintf(w, "batch %d  row %v  FAILED: %v\n", b.Number, res.Item, batchenrich.FailureReason(res.Err))
				continue
			}
			fmt.Fprintf(w, "batch %d  id %s  %s\n", b.Number, res.Item[0], res.Value)
		}
		return nil
	})
}
