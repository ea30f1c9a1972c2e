// Command enrichbench runs the seed job with several contenders, alternating,
// against a local httpbin-compatible API and PostgreSQL, verifies every run's
// output, and prints medians and ratios.
//
// Scenarios (issue 7):
//
//	latency  2000 rows, 20 batches of 100, concurrency 100, 20 ms per request;
//	         reports the run time against the floor (batches × latency).
//	cpu      20,000 rows, batches of 1000, no latency, concurrency 64;
//	         reports rows/s and ratios between contenders.
//	memory   10,000 then 100,000 rows, batches of 1000, concurrency 64, no
//	         latency; reports each contender's peak RSS and its growth.
//	custom   whatever -rows, -batch-size, -max-batches, -concurrency and
//	         -latency say.
//
// Every scenario reports the HTTP connections the API accepted per run, and
// (isolated runs) the CPU time per row of the client, the API server (this
// process), PostgreSQL and the rest of the machine, with its idle share.
// Each run happens in a child process (the same binary) unless -isolate=false,
// so that runs share no pool, heap or GC state; the child times the contender
// call alone (seeding and verification are outside it).
//
//	go run ./cmd/enrichbench -scenario cpu -rounds 5
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/batchenrich/batchenrich/bench/internal/contenders"
	"github.com/batchenrich/batchenrich/bench/internal/harness"
	"github.com/batchenrich/batchenrich/bench/internal/profileapi"
)

// scenario is one setting of the job.
type scenario struct {
	cfg     harness.Config
	latency time.Duration
}

var scenarios = map[string]scenario{
	"latency": {harness.Config{Rows: 2000, BatchSize: 100, MaxBatches: 20, Concurrency: 100}, 20 * time.Millisecond},
	"cpu":     {harness.Config{Rows: 20000, BatchSize: 1000, MaxBatches: 0, Concurrency: 64}, 0},
	"memory":  {harness.Config{Rows: 10000, BatchSize: 1000, MaxBatches: 0, Concurrency: 64}, 0},
	"custom":  {harness.Config{Rows: 2000, BatchSize: 100, MaxBatches: 20, Concurrency: 25}, 0},
}

type flags struct {
	scenario    string
	rounds      int
	contenders  string
	rows        int
	batchSize   int
	maxBatches  int
	concurrency int
	latency     time.Duration
	memoryRows  string
	databaseURL string
	targetURL   string
	server      string
	isolate     bool
	timeout     time.Duration
	jsonOut     string
	cpuProfile  string
}

func main() {
	if spec := os.Getenv(contenders.RiverWorkerEnv); spec != "" {
		os.Exit(contenders.RiverWorker(spec))
	}
	if spec := os.Getenv(childEnv); spec != "" {
		os.Exit(child(spec))
	}
	var f flags
	flag.StringVar(&f.scenario, "scenario", "latency", "latency, cpu, memory or custom")
	flag.IntVar(&f.rounds, "rounds", 3, "runs of each contender (alternating)")
	flag.StringVar(&f.contenders, "contenders", "naive,strong,batchenrich,batchenrich-overlap,http-waves", "comma-separated contenders (http-waves: the requests alone, a measure of the machine)")
	flag.IntVar(&f.rows, "rows", 0, "source rows (overrides the scenario)")
	flag.IntVar(&f.batchSize, "batch-size", 0, "rows per batch (overrides the scenario)")
	flag.IntVar(&f.maxBatches, "max-batches", -1, "batch cap, 0 for none (overrides the scenario)")
	flag.IntVar(&f.concurrency, "concurrency", 0, "profile calls in flight (overrides the scenario)")
	flag.DurationVar(&f.latency, "latency", -1, "added latency per request (overrides the scenario)")
	flag.StringVar(&f.memoryRows, "memory-rows", "10000,100000", "row counts compared by the memory scenario")
	flag.StringVar(&f.databaseURL, "database-url", "", "PostgreSQL URL (default $BATCHENRICH_BENCH_DATABASE_URL or "+harness.DefaultDatabaseURL+")")
	flag.StringVar(&f.targetURL, "target-url", "", "external httpbin-compatible API (default: one started on loopback; -latency and connection counts then do not apply)")
	flag.StringVar(&f.server, "server", "httpbin", "local API: httpbin (go-httpbin's handler) or echo (minimal /anything)")
	flag.BoolVar(&f.isolate, "isolate", true, "run each contender run in a child process")
	flag.DurationVar(&f.timeout, "timeout", 10*time.Minute, "limit per run")
	flag.StringVar(&f.jsonOut, "json", "", "also write every run as JSON to this file")
	flag.StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile of each contender run (child process only) to this file prefix: <prefix>.<contender>.<rows>.<round>.pprof")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, f)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "enrichbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, f flags) (err error) {
	sc, ok := scenarios[f.scenario]
	if !ok {
		return fmt.Errorf("unknown -scenario %q (want latency, cpu, memory or custom)", f.scenario)
	}
	if f.rounds < 1 || f.rounds > 100 {
		return fmt.Errorf("-rounds %d out of range 1..100", f.rounds)
	}
	cfg := sc.cfg
	if f.rows > 0 {
		cfg.Rows = f.rows
	}
	if f.batchSize > 0 {
		cfg.BatchSize = f.batchSize
	}
	if f.maxBatches >= 0 {
		cfg.MaxBatches = f.maxBatches
	}
	if f.concurrency > 0 {
		cfg.Concurrency = f.concurrency
	}
	latency := sc.latency
	if f.latency >= 0 {
		latency = f.latency
	}
	var names []string
	for n := range strings.SplitSeq(f.contenders, ",") {
		n = strings.TrimSpace(n)
		if _, ok := contenders.Lookup(n); !ok {
			return fmt.Errorf("unknown contender %q", n)
		}
		if contenders.IsPartitioned(n) && cfg.MaxBatches > 0 {
			return fmt.Errorf("contender %q splits the run into partitions, each with its own batch cap: use -max-batches 0", n)
		}
		names = append(names, n)
	}
	rowCounts := []int{cfg.Rows}
	if f.scenario == "memory" {
		f.isolate = true
		rowCounts = nil
		for s := range strings.SplitSeq(f.memoryRows, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n < 1 {
				return fmt.Errorf("-memory-rows: bad count %q", s)
			}
			rowCounts = append(rowCounts, n)
		}
	}

	dbURL := f.databaseURL
	if dbURL == "" {
		dbURL = os.Getenv("BATCHENRICH_BENCH_DATABASE_URL")
	}
	if dbURL == "" {
		dbURL = harness.DefaultDatabaseURL
	}
	db, err := harness.OpenDB(ctx, dbURL)
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		err = errors.Join(err, db.Close(cctx))
	}()
	cfg.DatabaseURL = db.URL

	var srv *profileapi.Server
	cfg.TargetURL = f.targetURL
	if cfg.TargetURL == "" {
		srv, err = profileapi.Start(profileapi.Kind(f.server), latency)
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, srv.Close()) }()
		cfg.TargetURL = srv.URL
	}

	fmt.Printf("scenario %s: rows %v, batch size %d, max batches %d, concurrency %d, latency %v, server %s, rounds %d, isolate %v\n",
		f.scenario, rowCounts, cfg.BatchSize, cfg.MaxBatches, cfg.Concurrency, latency, serverName(f), f.rounds, f.isolate)
	fmt.Printf("machine: %d CPUs, GOMAXPROCS %d, %s, load average %s\n", runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), loadavg())

	results := map[int]map[string][]harness.Result{}
	var all []harness.Result
	skipped := map[string]string{}
	for _, rows := range rowCounts {
		results[rows] = map[string][]harness.Result{}
		c := cfg
		c.Rows = rows
		for round := range f.rounds {
			for i := range names {
				name := names[(i+round)%len(names)] // rotate the order each round
				if _, ok := skipped[name]; ok {
					continue
				}
				r, err := runOnce(ctx, f, db, srv, name, c, round)
				if errors.Is(err, harness.ErrNotWired) {
					skipped[name] = "not wired yet (see internal/contenders/library.go)"
					fmt.Fprintf(os.Stderr, "  %-12s not wired: skipped\n", name)
					continue
				}
				if err != nil {
					return fmt.Errorf("%s, %d rows, round %d: %w", name, rows, round+1, err)
				}
				fmt.Fprintf(os.Stderr, "  %-12s rows %6d round %d: %8.1f ms %8.0f rows/s conns %4d rss %6d KB%s %s\n",
					name, rows, round+1, ms(r.Elapsed), r.RowsPerSecond(), r.Conns, r.PeakRSSKB, cpuLine(r), r.Stats.Detail)
				results[rows][name] = append(results[rows][name], r)
				all = append(all, r)
			}
		}
	}
	fmt.Printf("load average after: %s\n\n", loadavg())

	if f.scenario == "memory" {
		printMemory(names, rowCounts, results)
	} else {
		printThroughput(f.scenario, names, results[cfg.Rows], cfg, latency, srv != nil)
		printCPU(names, results[cfg.Rows])
	}
	for _, n := range names {
		if why, ok := skipped[n]; ok {
			fmt.Printf("%s: %s; no figure\n", n, why)
		}
	}
	if f.jsonOut != "" {
		b, err := json.MarshalIndent(all, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(f.jsonOut, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// runOnce seeds, runs one contender once and verifies its output.
func runOnce(ctx context.Context, f flags, db *harness.DB, srv *profileapi.Server, name string, cfg harness.Config, round int) (harness.Result, error) {
	cfg.ExecutionID = harness.NewExecutionID()
	r := harness.Result{Contender: name, Round: round + 1, Rows: cfg.Expected()}
	if err := db.Reset(ctx, cfg.ExecutionID, cfg.Rows); err != nil {
		return r, err
	}
	if srv != nil {
		srv.Reset()
	}
	rctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	var out childResult
	var err error
	if f.isolate {
		prof := ""
		if f.cpuProfile != "" {
			prof = fmt.Sprintf("%s.%s.%d.%d.pprof", f.cpuProfile, name, cfg.Rows, round+1)
		}
		// The harness only waits while the child runs: its own CPU is the
		// profile API's. PostgreSQL's is read before and after too, once
		// the child's backends have had a moment to exit and be reaped.
		srv0 := harness.SelfCPU()
		db0, dbOK := harness.PostgresCPU()
		busy0, idle0, _ := harness.MachineCPU()
		out, err = runChild(rctx, name, cfg, prof)
		r.ClientCPU, r.ServerCPU = time.Duration(out.CPUNS), harness.SelfCPU()-srv0
		busy1, idle1, _ := harness.MachineCPU()
		r.MachineBusy, r.MachineIdle = busy1-busy0, idle1-idle0
		if dbOK {
			time.Sleep(100 * time.Millisecond)
			db1, _ := harness.PostgresCPU()
			r.DBCPU = db1 - db0
		}
	} else {
		out, err = runInProcess(rctx, name, cfg)
	}
	if err != nil {
		return r, err
	}
	r.Elapsed, r.Stats, r.PeakRSSKB = time.Duration(out.ElapsedNS), out.Stats, out.PeakRSSKB
	if srv != nil {
		r.Conns, r.Requests = srv.Counters()
		want := int64(r.Rows)
		if contenders.IsBulk(name) {
			want = int64((r.Rows + profileapi.MaxBulkIDs - 1) / profileapi.MaxBulkIDs)
		}
		if r.Requests < want {
			return r, fmt.Errorf("the API served %d requests for %d rows", r.Requests, r.Rows)
		}
	}
	if contenders.IsProbe(name) {
		if r.Stats.Written != r.Rows {
			return r, fmt.Errorf("probe checked %d responses for %d rows", r.Stats.Written, r.Rows)
		}
		return r, nil
	}
	if err := db.Verify(ctx, cfg); err != nil {
		return r, err
	}
	return r, nil
}

func printThroughput(scen string, names []string, byName map[string][]harness.Result, cfg harness.Config, latency time.Duration, counted bool) {
	sums := map[string]harness.Summary{}
	for _, n := range names {
		if rs := byName[n]; len(rs) > 0 {
			sums[n] = harness.Summarize(n, rs)
		}
	}
	// floor: batches strictly one after the other, each needing
	// ceil(batch/concurrency) waves of one latency.
	waves := (cfg.BatchSize + cfg.Concurrency - 1) / cfg.Concurrency
	floor := time.Duration(cfg.Batches()*waves) * latency

	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	phases := false
	for _, rs := range byName {
		for _, r := range rs {
			phases = phases || r.Stats.Phase > 0
		}
	}
	head := "contender\truns\tmedian ms\tmin ms\tmax ms\trows/s\t"
	if floor > 0 {
		head += "÷ floor\t"
		if phases {
			head += "phase ÷ floor\t"
		}
	}
	_, limit := sums["http-waves"]
	if limit {
		head += "÷ http-waves\t"
	}
	_, strictFloor := sums["strict-floor"]
	if strictFloor {
		head += "÷ strict-floor\t"
	}
	head += "× naive\t× strong\t"
	if counted {
		head += "conns/run\tmax conns\t"
	}
	fmt.Fprintln(tw, head)
	for _, n := range names {
		s, ok := sums[n]
		if !ok {
			continue
		}
		line := fmt.Sprintf("%s\t%d\t%.1f\t%.1f\t%.1f\t%.0f\t", n, s.Runs, ms(s.Median), ms(s.Min), ms(s.Max), s.RowsPerSec)
		if floor > 0 {
			line += fmt.Sprintf("%.2f\t", float64(s.Median)/float64(floor))
			if phases {
				line += phaseRatio(byName[n], floor) + "\t"
			}
		}
		if limit {
			line += fmt.Sprintf("%.2f\t", float64(s.Median)/float64(sums["http-waves"].Median))
		}
		if strictFloor {
			line += fmt.Sprintf("%.3f\t", float64(s.Median)/float64(sums["strict-floor"].Median))
		}
		line += ratio(s, sums["naive"]) + "\t" + ratio(s, sums["strong"]) + "\t"
		if counted {
			line += fmt.Sprintf("%d\t%d\t", s.Conns, s.MaxConns)
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
	if floor > 0 {
		fmt.Printf("floor (%s): %d batches × %d wave(s) × %v = %v; times are the whole contender call\n", scen, cfg.Batches(), waves, latency, floor)
		if phases {
			fmt.Println("phase ÷ floor: median of the contender's own processing phase (e.g. batchenrich's Report.Duration, without opening pools and creating tables) ÷ floor")
		}
	}
	if limit {
		fmt.Println("÷ http-waves: median time ÷ http-waves' median: the requests alone, in strict waves of one batch, no database (the physical limit of this machine)")
	}
	if strictFloor {
		fmt.Println("÷ strict-floor: median time ÷ strict-floor's median: the same requests in strict waves, each followed by the cheapest durable commit (one transaction: COPY of the wave's rows and a checkpoint upsert), the floor under strict mode")
	}
	fmt.Println("× naive / × strong: median rows/s divided by that contender's median rows/s")
}

func printMemory(names []string, rowCounts []int, results map[int]map[string][]harness.Result) {
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := "contender\t"
	for _, n := range rowCounts {
		head += fmt.Sprintf("RSS@%d KB\trows/s@%d\t", n, n)
	}
	head += fmt.Sprintf("RSS %d÷%d\t", rowCounts[len(rowCounts)-1], rowCounts[0])
	fmt.Fprintln(tw, head)
	for _, name := range names {
		line := name + "\t"
		var first, last int64
		for i, n := range rowCounts {
			rs := results[n][name]
			if len(rs) == 0 {
				line += "-\t-\t"
				continue
			}
			s := harness.Summarize(name, rs)
			line += fmt.Sprintf("%d\t%.0f\t", s.PeakRSSKB, s.RowsPerSec)
			if i == 0 {
				first = s.PeakRSSKB
			}
			last = s.PeakRSSKB
		}
		if first > 0 {
			line += fmt.Sprintf("%.2f\t", float64(last)/float64(first))
		} else {
			line += "-\t"
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
	fmt.Println("RSS: median peak resident set (VmHWM) of the child process running the contender")
}

// cpuLine is a run's CPU per row, for the progress lines; empty when not
// measured.
func cpuLine(r harness.Result) string {
	if r.ClientCPU == 0 {
		return ""
	}
	return fmt.Sprintf(" CPU µs/row client %.1f server %.1f db %.1f other %.1f idle %.0f%%", us(r.PerRow(r.ClientCPU)), us(r.PerRow(r.ServerCPU)),
		us(r.PerRow(r.DBCPU)), us(r.PerRow(r.OtherCPU())), 100*r.IdleShare())
}

// printCPU prints the CPU accounting of the runs (medians of CPU per row,
// by process) and each contender's time against the references' in the
// same round (medians of the per-round ratios).
func printCPU(names []string, byName map[string][]harness.Result) {
	measured := false
	for _, rs := range byName {
		for _, r := range rs {
			measured = measured || r.ClientCPU > 0
		}
	}
	if !measured {
		return
	}
	var refs []string
	for _, ref := range []string{"strong", "http-waves", "strict-floor"} {
		if len(byName[ref]) > 0 {
			refs = append(refs, ref)
		}
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := "contender\tmedian ms\tclient µs/row\tserver µs/row\tdb µs/row\ttotal µs/row\tother µs/row\tidle %\t"
	for _, ref := range refs {
		if ref == "strong" {
			head += "× strong per round\t"
		} else {
			head += "÷ " + ref + " per round\t"
		}
	}
	fmt.Fprintln(tw, head)
	for _, n := range names {
		rs := byName[n]
		if len(rs) == 0 {
			continue
		}
		med := func(f func(harness.Result) time.Duration) float64 {
			v := make([]float64, len(rs))
			for i, r := range rs {
				v[i] = float64(f(r))
			}
			return harness.Median(v)
		}
		line := fmt.Sprintf("%s\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.0f\t", n,
			med(func(r harness.Result) time.Duration { return r.Elapsed })/1e6,
			med(func(r harness.Result) time.Duration { return r.PerRow(r.ClientCPU) })/1e3,
			med(func(r harness.Result) time.Duration { return r.PerRow(r.ServerCPU) })/1e3,
			med(func(r harness.Result) time.Duration { return r.PerRow(r.DBCPU) })/1e3,
			med(func(r harness.Result) time.Duration { return r.PerRow(r.TotalCPU()) })/1e3,
			med(func(r harness.Result) time.Duration { return r.PerRow(r.OtherCPU()) })/1e3,
			100*med(func(r harness.Result) time.Duration { return time.Duration(1e6 * r.IdleShare()) })/1e6)
		for _, ref := range refs {
			line += roundRatio(rs, byName[ref], ref == "strong") + "\t"
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
	fmt.Println("CPU per row: medians; client = the contender's process during its call, server = the harness process (the profile API) during the child's life, db = all PostgreSQL processes over the same span (any other database's work included), other = the machine's remaining busy time; idle = the machine's idle share of that span")
	fmt.Println("per round: median over rounds of the ratio to the reference's run in the same round (× strong: throughput, ÷ http-waves and ÷ strict-floor: time)")
}

// roundRatio is the median over rounds of rs's elapsed time divided by
// ref's in the same round (inverted, a throughput ratio, if throughput),
// or "-".
func roundRatio(rs, ref []harness.Result, throughput bool) string {
	byRound := map[int]time.Duration{}
	for _, r := range ref {
		byRound[r.Round] = r.Elapsed
	}
	var v []float64
	for _, r := range rs {
		if d, ok := byRound[r.Round]; ok && d > 0 {
			q := float64(r.Elapsed) / float64(d)
			if throughput {
				q = 1 / q
			}
			v = append(v, q)
		}
	}
	if len(v) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.3f", harness.Median(v))
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// phaseRatio is the median Stats.Phase of rs divided by floor, or "-".
func phaseRatio(rs []harness.Result, floor time.Duration) string {
	var ps []time.Duration
	for _, r := range rs {
		if r.Stats.Phase > 0 {
			ps = append(ps, r.Stats.Phase)
		}
	}
	if len(ps) == 0 {
		return "-"
	}
	slices.Sort(ps)
	return fmt.Sprintf("%.2f", float64(ps[len(ps)/2])/float64(floor))
}

func ratio(s, ref harness.Summary) string {
	if ref.Runs == 0 || ref.RowsPerSec == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", s.RowsPerSec/ref.RowsPerSec)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func serverName(f flags) string {
	if f.targetURL != "" {
		return f.targetURL
	}
	return f.server
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	fs := strings.Fields(string(b))
	if len(fs) < 3 {
		return "?"
	}
	return strings.Join(fs[:3], " ")
}
