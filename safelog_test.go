package batchenrich_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/batchenrich/batchenrich"
)

// panicHandler is a slog.Handler that panics in the method named by in.
type panicHandler struct{ in string }

func (h panicHandler) Enabled(context.Context, slog.Level) bool {
	if h.in == "Enabled" {
		panic("logger boom in Enabled")
	}
	return true
}

func (h panicHandler) Handle(context.Context, slog.Record) error {
	if h.in == "Handle" {
		panic("logger boom in Handle")
	}
	return nil
}

func (h panicHandler) WithAttrs([]slog.Attr) slog.Handler {
	if h.in == "WithAttrs" {
		panic("logger boom in WithAttrs")
	}
	return h
}

func (h panicHandler) WithGroup(string) slog.Handler { return h }

// TestPanickingLoggerNeverEscapes checks that a Logger whose handler
// panics neither crashes the process (with Overlap the writer goroutine
// logs) nor fails the run: its records are lost, the work is done.
func TestPanickingLoggerNeverEscapes(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"Enabled", "Handle"} {
		for _, overlap := range []bool{false, true} {
			name := in
			if overlap {
				name += "/overlap"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				f := newFixture(25)
				f.enr.Fail = func(i item) error {
					if i%5 == 0 {
						return errors.New("x")
					}
					return nil
				}
				rep, err := f.run(t, context.Background(), batchenrich.Options{
					BatchSize: 10, Overlap: overlap, Logger: slog.New(panicHandler{in: in}),
				})
				if err != nil {
					t.Fatalf("Run: %v", err)
				}
				if rep.Written != 25 || rep.Failed != 5 {
					t.Fatalf("written %d, failed %d; want 25, 5", rep.Written, rep.Failed)
				}
			})
		}
	}
}
