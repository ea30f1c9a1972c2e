package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/batchenrich/batchenrich/internal/testdb"
)

// childArgsEnv carries the arguments of the program run by
// TestHelperProcess, as a JSON array.
const childArgsEnv = "TRAVELERS_CHILD_ARGS"

// TestHelperProcess runs the program as a child process, to be killed by
// a test; it does nothing in a normal test run.
func TestHelperProcess(t *testing.T) {
	spec := os.Getenv(childArgsEnv)
	if spec == "" {
		t.Skip("child process only")
	}
	var args []string
	if err := json.Unmarshal([]byte(spec), &args); err != nil {
		os.Exit(exitUsage)
	}
	os.Exit(run(context.Background(), args, os.Stdout, os.Stderr, noEnv))
}

// TestRetryFailedKilledThenResumed kills a replay with SIGKILL in its
// third batch, then runs it again: it resumes after the two committed
// batches and ends with exact rows. The dead process's run locks end with
// its sessions on PostgreSQL, and are recognised as a dead holder's on
// SQLite.
func TestRetryFailedKilledThenResumed(t *testing.T) {
	for _, k := range testdb.Kinds {
		t.Run(string(k), func(t *testing.T) { killedThenResumed(t, k) })
	}
}

func killedThenResumed(t *testing.T, k testdb.Kind) {
	dsn, api, replayArgs, batches := outageRun(t, k, "kill-1")

	// The child hangs on traveler 260's request (its third replay
	// batch) until it is killed. It has an API of its own: a request it
	// sent just before the kill may reach an API after the kill, and
	// must not be counted with the resumed replay's.
	childAPI := newOutageAPI(t)
	childAPI.healed.Store(true)
	dead := make(chan struct{})
	var release sync.Once
	defer release.Do(func() { close(dead) })
	reached := make(chan struct{}, 1)
	childAPI.mu.Lock()
	childAPI.onRequest = func(id int) {
		if id == 260 {
			select {
			case reached <- struct{}{}:
			default:
			}
			<-dead
		}
	}
	childAPI.mu.Unlock()
	spec, _ := json.Marshal(append(replayArgs[:len(replayArgs):len(replayArgs)], "-profile-url", childAPI.URL+"/anything"))
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), childArgsEnv+"="+string(spec))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-reached:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatal("the child never reached its third replay batch")
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	release.Do(func() { close(dead) })
	first := childAPI.requests()
	waitSessionsGone(t, k, dsn, cmd.Process.Pid)

	code, stdout, stderr := program(t, context.Background(), replayArgs...)
	s := summaryOf(t, stdout)
	second := api.requests()
	if code != exitOK || s.Replay == nil || s.Replay.Number != 1 || s.Replay.Replayed != 10 || s.Replay.StillTransient != 0 ||
		s.Execution.BatchesSkipped != 2 || s.Data.ValidRows != 396 || s.Data.StoredRows != 400 || s.Data.MissingRows != 0 {
		t.Fatalf("replay after the kill: exit %d %+v %+v\n%s", code, s, s.Replay, stderr)
	}
	for id := 20; id <= 200; id += 20 {
		if first[id] != 1 || second[id] != 0 {
			t.Fatalf("traveler %d: %d requests before the kill, %d after; want 1, 0", id, first[id], second[id])
		}
	}
	if sum(second) != 10 {
		t.Fatalf("requests after the kill: %v", second)
	}
	if got := batchNumbers(t, dsn, "kill-1"); !mapsEqual(got, batches) {
		t.Fatal("batch numbers changed by the replay")
	}
}

// waitSessionsGone waits until the PostgreSQL sessions of the killed
// travelers process pid have ended; on SQLite it does nothing. The server
// ends a dead client's session, and the run lock it holds, only when it
// notices the closed socket, a moment after the process is reaped: a run
// started meanwhile would be refused as locked by a live holder.
func waitSessionsGone(t *testing.T, k testdb.Kind, dsn string, pid int) {
	t.Helper()
	if k != testdb.PostgreSQL {
		return
	}
	db := openDSN(t, dsn)
	defer db.Close()
	start := time.Now()
	for i := 0; ; i++ {
		var n int
		if err := db.Get(&n, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`, appNameOf(pid)); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			if i > 0 {
				t.Logf("the killed child's sessions lasted %s after it was reaped", time.Since(start).Round(time.Millisecond))
			}
			return
		}
		if time.Since(start) > time.Minute {
			t.Fatalf("%d sessions of the killed child still open after a minute", n) // a hang guard
		}
		time.Sleep(10 * time.Millisecond)
	}
}
