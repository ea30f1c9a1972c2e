package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/batchenrich/batchenrich/bench/internal/contenders"
	"github.com/batchenrich/batchenrich/bench/internal/harness"
)

// childEnv carries a child's job (a childSpec in JSON). Its presence makes
// the binary run that one job and exit.
const childEnv = "ENRICHBENCH_CHILD"

type childSpec struct {
	Contender  string         `json:"contender"`
	Config     harness.Config `json:"config"`
	TimeoutNS  int64          `json:"timeout_ns"`
	CPUProfile string         `json:"cpu_profile,omitempty"`
}

type childResult struct {
	Stats     harness.Stats `json:"stats"`
	ElapsedNS int64         `json:"elapsed_ns"`
	PeakRSSKB int64         `json:"peak_rss_kb"`
	CPUNS     int64         `json:"cpu_ns"` // the process's CPU time during the call
	NotWired  bool          `json:"not_wired,omitempty"`
	Error     string        `json:"error,omitempty"`
}

// child runs one contender once and prints a childResult on stdout.
func child(spec string) int {
	var s childSpec
	if err := json.Unmarshal([]byte(spec), &s); err != nil {
		fmt.Fprintln(os.Stderr, "enrichbench child: bad spec:", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(s.TimeoutNS))
	defer cancel()
	if s.CPUProfile != "" {
		f, err := os.Create(s.CPUProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "enrichbench child:", err)
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "enrichbench child:", err)
			return 2
		}
	}
	out := timed(ctx, s.Contender, s.Config)
	if s.CPUProfile != "" {
		pprof.StopCPUProfile()
	}
	out.PeakRSSKB = vmHWM()
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, "enrichbench child:", err)
		return 2
	}
	return 0
}

// timed runs the contender and times the call alone.
func timed(ctx context.Context, name string, cfg harness.Config) childResult {
	var out childResult
	run, ok := contenders.Lookup(name)
	if !ok {
		out.Error = "unknown contender " + name
		return out
	}
	cpu0 := harness.SelfCPU()
	start := time.Now()
	st, err := run(ctx, cfg)
	out.ElapsedNS = int64(time.Since(start))
	out.CPUNS = int64(harness.SelfCPU() - cpu0)
	if st.Detail != "" {
		st.Detail += "; "
	}
	// In a child, the process is the contender alone (the profile API and
	// PostgreSQL run elsewhere): its CPU time is less at the mercy of the
	// machine's load than the elapsed time.
	st.Detail += fmt.Sprintf("process CPU %.0f ms", float64(out.CPUNS)/1e6)
	out.Stats = st
	if err != nil {
		out.Error = err.Error()
		out.NotWired = errors.Is(err, harness.ErrNotWired)
	}
	return out
}

func runInProcess(ctx context.Context, name string, cfg harness.Config) (childResult, error) {
	return resultErr(timed(ctx, name, cfg))
}

func runChild(ctx context.Context, name string, cfg harness.Config, cpuProfile string) (childResult, error) {
	exe, err := os.Executable()
	if err != nil {
		return childResult{}, err
	}
	deadline, _ := ctx.Deadline()
	spec, err := json.Marshal(childSpec{Contender: name, Config: cfg, TimeoutNS: int64(time.Until(deadline)), CPUProfile: cpuProfile})
	if err != nil {
		return childResult{}, err
	}
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), childEnv+"="+string(spec))
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return childResult{}, fmt.Errorf("child: %w", err)
	}
	var out childResult
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &out); err != nil {
		return out, fmt.Errorf("child output %q: %w", stdout.String(), err)
	}
	if out.PeakRSSKB == 0 {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			out.PeakRSSKB = ru.Maxrss // KB on Linux
		}
	}
	return resultErr(out)
}

func resultErr(out childResult) (childResult, error) {
	switch {
	case out.NotWired:
		return out, fmt.Errorf("%w: %s", harness.ErrNotWired, out.Error)
	case out.Error != "":
		return out, errors.New(out.Error)
	}
	return out, nil
}

// vmHWM returns this process's peak resident set size in KB, from
// /proc/self/status; 0 if unavailable.
func vmHWM() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}
