package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/sqlbatch"
)

// lastErrorWidth bounds the last error shown in a table row, in runes.
const lastErrorWidth = 80

// printRuns prints one line per run.
func printRuns(w io.Writer, runs []sqlbatch.RunStatus) error {
	if len(runs) == 0 {
		_, err := fmt.Fprintln(w, "no runs")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tJOB\tSTATE\tPARTITIONS\tBATCH\tREAD\tWRITTEN\tFAILED\tRATE\tETA\tUPDATED\tLAST ERROR")
	for _, st := range runs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n",
			clean(st.RunKey), orDash(clean(st.Job)), state(st), partitionsCell(st), batches(st),
			st.Counts.Read, st.Counts.Written, failures(st.Counts), rateText(st.Counts, st.Started, st.Updated),
			etaText(st), when(st.Updated), orDash(cut(clean(st.LastError), lastErrorWidth)))
	}
	return tw.Flush()
}

// partitionsCell is "done/count" for a partitioned run, "-" for one
// that is not.
func partitionsCell(st sqlbatch.RunStatus) string {
	if len(st.Partitions) < 2 {
		return "-"
	}
	return strconv.Itoa(partitionsDone(st)) + "/" + strconv.Itoa(len(st.Partitions)) + " done"
}

// maxBatchesShown bounds the partitions whose last batch a runs line
// lists.
const maxBatchesShown = 8

// batches is each partition's last committed batch, in partition order:
// "12" for an unpartitioned run, "12,10,11" for three partitions.
func batches(st sqlbatch.RunStatus) string {
	var b []string
	for i, p := range st.Partitions {
		if i == maxBatchesShown {
			b = append(b, "…")
			break
		}
		b = append(b, strconv.Itoa(p.Batch))
	}
	return strings.Join(b, ",")
}

func rateText(c batchenrich.RunCounts, started, updated time.Time) string {
	r, ok := rate(c, started, updated)
	if !ok {
		return "-"
	}
	return strconv.FormatFloat(r, 'f', 1, 64) + "/s"
}

func etaText(st sqlbatch.RunStatus) string {
	d, ok := eta(st)
	if !ok {
		return "-"
	}
	return "~" + d.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// printStatus prints one run in detail, then a line per partition.
func printStatus(w io.Writer, st sqlbatch.RunStatus) error {
	c := st.Counts
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	field := func(name, value string) { fmt.Fprintf(tw, "%s:\t%s\n", name, value) }
	field("run", clean(st.RunKey))
	field("job", orDash(clean(st.Job)))
	field("state", state(st))
	if len(st.Partitions) > 1 {
		field("partitions", fmt.Sprintf("%d (%d done)", len(st.Partitions), partitionsDone(st)))
	}
	field("batches", strconv.Itoa(c.Batches))
	field("items", fmt.Sprintf("read %d, enriched %d, failed %s, written %d", c.Read, c.Enriched, failures(c), c.Written))
	field("rate", rateText(c, st.Started, st.Updated)+" (items read per second since the run started)")
	if len(st.Partitions) > 1 {
		field("eta", etaText(st))
	}
	field("started", when(st.Started))
	field("updated", when(st.Updated))
	field("finished", when(st.Finished))
	field("last error", orDash(clean(st.LastError)))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTITION\tSTATE\tBATCH\tREAD\tENRICHED\tFAILED\tWRITTEN\tRATE\tSTARTED\tUPDATED\tFINISHED\tSAVED BY\tLAST ERROR")
	for _, p := range st.Partitions {
		name := "-"
		if p.Count > 1 {
			name = strconv.Itoa(p.Index)
		}
		ps := partState(p)
		if p.StopRequested {
			ps += ", stop requested"
		}
		holder := "-"
		if p.Host != "" || p.PID != 0 {
			holder = clean(p.Host) + " pid " + strconv.Itoa(p.PID)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", name, ps, p.Batch,
			p.Counts.Read, p.Counts.Enriched, failures(p.Counts), p.Counts.Written, rateText(p.Counts, p.Started, p.Updated),
			when(p.Started), when(p.Updated), when(p.Finished), holder, orDash(clean(p.LastError)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w, "FAILED: T transient, P permanent, U unclassified; SAVED BY: the host and pid that saved the last checkpoint")
	return err
}

// printStop says what the stop request of st's run does: n of its
// partitions were asked.
func printStop(w io.Writer, asJSON bool, st sqlbatch.RunStatus, n int) error {
	held := 0
	for _, p := range st.Partitions {
		if p.State == batchenrich.StateRunning && p.Held {
			held++
		}
	}
	held = min(held, n)
	if asJSON {
		return writeJSON(w, stopJSON{RunKey: st.RunKey, State: string(st.State), Requested: n, Held: held})
	}
	key := clean(st.RunKey)
	if n == 0 {
		_, err := fmt.Fprintf(w, "run %s is %s: no partition is running, nothing to stop\n", key, clean(string(st.State)))
		return err
	}
	msg := fmt.Sprintf("stop requested for run %s (%d of %d partitions running):", key, n, len(st.Partitions))
	if held > 0 {
		msg += fmt.Sprintf(" %d held by a runner now finish and commit the batch each is on, then stop;", held)
	}
	if n > held {
		msg += fmt.Sprintf(" %d held by no process (interrupted) stop when a runner next starts them, before any batch;", n-held)
	}
	msg += " each is then recorded as stopped. Run it again with the same key to resume it."
	_, err := fmt.Fprintln(w, msg)
	return err
}
