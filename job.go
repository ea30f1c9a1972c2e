package batchenrich

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/batchenrich/batchenrich/redact"
)

// Describer is an optional ability of a Source, Enricher or Sink:
// describing what defines the results it gives (for a SQL table, its
// name, key and columns; for an HTTP API, its method and URL template),
// without any secret and without what may change from run to run of the
// same job (a connection's address, a concurrency limit). New records
// the descriptions of the components that have one as the run's
// definition (Checkpoint.Definition), and a run resuming a run key whose
// checkpoints were recorded with another definition is refused with
// ErrCheckpointMismatch naming the component that differs. sqlbatch's
// Source and Sink and httpenrich's Enricher implement it; a wrapper of a
// component should implement it by returning the wrapped one's.
type Describer interface {
	Describe() string
}

// RunState is the state of a run (or of one partition of it) that a
// CheckpointStore records with its checkpoint. The zero value means not
// recorded (a checkpoint of an older version).
type RunState string

// The states of a run.
const (
	// StateRunning: a runner works on it, or was working on it when its
	// process died (the store's run lock tells which).
	StateRunning RunState = "running"
	// StateDone: the Source was exhausted and every batch committed.
	StateDone RunState = "done"
	// StateFailed: its last run stopped with an error (Checkpoint.LastError);
	// running it again resumes after its last committed batch.
	StateFailed RunState = "failed"
	// StateStopped: its last run was stopped, at an operator's request
	// (ErrStopRequested), by the end of its context, or by
	// Options.MaxBatches (its last batch under the cap committed, no
	// error); running it again resumes after its last committed batch
	// (after a cap, with a larger MaxBatches).
	StateStopped RunState = "stopped"
)

// RunCounts count the items and batches a run committed, over all its
// attempts: a resumed run adds to those recorded. They are saved with
// each checkpoint, so that after a crash they count exactly what is
// stored. A run resuming a checkpoint of an older version, which recorded
// no counts, counts every committed batch (from the checkpoint's Batch)
// but only the items of the batches committed since.
type RunCounts struct {
	// Batches is the number of batches committed.
	Batches int
	// Read is the number of items read in those batches; Enriched and
	// Failed split them.
	Read, Enriched, Failed int
	// FailedTransient and FailedPermanent split Failed by Class (the rest
	// is unclassified).
	FailedTransient, FailedPermanent int
	// Written is the number of results handed to the Sink and committed.
	Written int
}

// StopRequester is an optional ability of a CheckpointStore: telling a
// runner that an operator asked its run to stop (sqlbatch's
// CheckpointStore.RequestStop). StopRequested reports whether a stop of
// runKey was requested, as learnt by the store while saving the run's
// checkpoints (it must not do I/O: it is called after each batch). The
// Runner calls it after each committed batch and, when it returns true,
// stops there: Run returns a *BatchError wrapping ErrStopRequested and
// records the run as StateStopped. A later run of the key resumes it.
type StopRequester interface {
	StopRequested(runKey string) bool
}

// maxLastError bounds Checkpoint.LastError, in bytes.
const maxLastError = 1024

// lastError returns err's text as recorded in a checkpoint: its secrets
// redacted, control characters replaced, at most maxLastError bytes.
func lastError(err error) string {
	if err == nil {
		return ""
	}
	s := redact.Text(err.Error())
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	if len(s) > maxLastError {
		cut := maxLastError - len("…")
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// components names the parts of a run's definition, in order.
var components = [...]string{"source", "enricher", "sink"}

// definitionOf returns the definition of a run with these components: a
// line "name: description" for each that is a Describer. A panic in
// Describe is returned as an error.
func definitionOf(src, enr, sink any, args argNames) (string, error) {
	var b strings.Builder
	for i, c := range [...]any{src, enr, sink} {
		d, ok := c.(Describer)
		if !ok {
			continue
		}
		var s string
		if err := guarded(func() error { s = d.Describe(); return nil }); err != nil {
			return "", &ConfigError{Package: "batchenrich", Field: args[i], Reason: "Describe", Err: err}
		}
		if s == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(components[i] + ": " + strings.ReplaceAll(s, "\n", " "))
	}
	return b.String(), nil
}

// definitionParts splits a definition into its components' descriptions.
func definitionParts(def string) map[string]string {
	parts := map[string]string{}
	for line := range strings.Lines(def) {
		name, desc, _ := strings.Cut(strings.TrimSuffix(line, "\n"), ": ")
		parts[name] = desc
	}
	return parts
}

// identityDiffs says how the job and definition recorded in cp differ
// from the run's, comparing only the components named in which (all when
// nil). An empty recorded Job or Definition (an older version's
// checkpoint) matches any, and so does a component that did not, or does
// not, describe itself.
func identityDiffs(cp Checkpoint, o Options, which []string) []string {
	var diffs []string
	if cp.Job != "" && cp.Job != o.Durable.Job {
		diffs = append(diffs, "Job "+strconv.Quote(cp.Job)+" (this run: "+strconv.Quote(o.Durable.Job)+")")
	}
	if cp.Definition == "" || cp.Definition == o.definition {
		return diffs
	}
	was, is := definitionParts(cp.Definition), definitionParts(o.definition)
	for _, c := range components {
		if which != nil && !contains(which, c) {
			continue
		}
		// A component that does not describe itself (a wrapper, say),
		// now or then, is not compared.
		if was[c] != "" && is[c] != "" && was[c] != is[c] {
			diffs = append(diffs, c+" "+strconv.Quote(was[c])+" (this run: "+strconv.Quote(is[c])+")")
		}
	}
	return diffs
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// checkRunKey refuses a run key a user gives that could be mistaken for
// one the library derives (Partition.RunKey, a replay's K#replay-n), or that would be
// printed wrongly: '#', control characters, invalid UTF-8.
func checkRunKey(field, key string) error {
	if !utf8.ValidString(key) {
		return optionErr(field, "not valid UTF-8")
	}
	for _, r := range key {
		switch {
		case r == '#':
			return optionErr(field, fmt.Sprintf("%q: must not contain '#', which the keys of partitions and replays are derived with (Partition.RunKey, a replay's key#replay-n)", key))
		case unicode.IsControl(r):
			return optionErr(field, fmt.Sprintf("%q: must not contain control characters", key))
		}
	}
	return nil
}
