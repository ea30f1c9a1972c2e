package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// progress draws a one-line progress bar on w from the Runner's Tracer:
// batch i of N, rows/s, failures so far, ETA.
type progress struct {
	w        io.Writer
	tty      bool // redraw one line; otherwise a line per batch
	batches  int  // expected batches
	rows     int  // expected rows
	start    time.Time
	before   int // rows written by earlier invocations of the run
	done     int // rows written, before included
	failed   int
	batch    int // the batch being worked on (the bar)
	written  int // the last batch written (the lines); with Overlap it trails batch
	lastDraw time.Time
	split    bool // -partitions: batch counts the batches written over all partitions
}

// newProgress follows a run of batches batches and rows rows, of which
// before were written by earlier invocations (a resumed run counts them).
func newProgress(w io.Writer, batches, rows, before int) *progress {
	tty := false
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	return &progress{w: w, tty: tty, batches: batches, rows: rows, before: before, done: before, start: time.Now()}
}

// follow reads events until the channel is closed, then ends the line.
func (p *progress) follow(events <-chan event) {
	for ev := range events {
		switch ev.Kind {
		case evRunResumed:
			if p.split {
				fmt.Fprintf(p.w, "partition %d resuming after batch %d\n", ev.Partition, ev.Batch)
				p.batch += ev.Batch
				p.written = p.batch
				break
			}
			fmt.Fprintf(p.w, "resuming after batch %d\n", ev.Batch)
			p.batch, p.written = ev.Batch, ev.Batch
		case evBatchStarted:
			if !p.split {
				p.batch = ev.Batch
			}
		case evItemFailed:
			p.failed++
		case evBatchWritten:
			p.done += ev.Stats.Written
			if p.split {
				p.batch++
				p.written = p.batch
			} else {
				p.written = ev.Batch
			}
		}
		switch {
		case !p.tty:
			if ev.Kind == evBatchWritten {
				p.line()
			}
		case (ev.Kind != evItemFailed && ev.Kind != evLimitChanged) || time.Since(p.lastDraw) > 100*time.Millisecond:
			p.draw()
		}
	}
	if p.tty {
		p.draw()
		fmt.Fprintln(p.w)
	}
}

// line reports the last batch written, for logs and pipes.
func (p *progress) line() {
	fmt.Fprintf(p.w, "batch %d/%d written  %d/%d rows  %.0f rows/s  %d failed\n",
		p.written, p.batches, p.done, p.rows, p.rate(), p.failed)
}

func (p *progress) rate() float64 {
	if s := time.Since(p.start).Seconds(); s > 0 {
		return float64(p.done-p.before) / s
	}
	return 0
}

func (p *progress) draw() {
	p.lastDraw = time.Now()
	const width = 30
	frac := 0.0
	if p.rows > 0 {
		frac = min(1, float64(p.done)/float64(p.rows))
	}
	filled := int(frac * width)
	rate := p.rate()
	eta := "--"
	if rate > 0 && p.done < p.rows {
		eta = (time.Duration(float64(p.rows-p.done) / rate * float64(time.Second))).Round(100 * time.Millisecond).String()
	}
	fmt.Fprintf(p.w, "\r[%s%s] batch %d/%d  %d/%d rows  %.0f rows/s  %d failed  ETA %s   ",
		strings.Repeat("#", filled), strings.Repeat(".", width-filled),
		p.batch, p.batches, p.done, p.rows, rate, p.failed, eta)
}
