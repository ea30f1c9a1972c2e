package httpenrich

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// livenessSeedEnv replays TestAdaptiveLiveness's scripts: set it to the
// seed a failure printed.
const livenessSeedEnv = "HTTPENRICH_LIVENESS_SEED"

// TestAdaptiveLiveness drives the adaptive state (the limiter, the gate and
// the pacer, through upstreams.admit as the transport calls it) with
// randomized scripts of answers — every status class, Retry-After of 0, of
// seconds, of dates past and future and malformed, rate-limit headers
// spending the budget, timeouts, connection resets and refusals, slow
// bodies, cancellations before and while waiting — from many workers at
// once, and asserts that work always progresses: no state where every
// worker waits with no request in flight (a probe or other) and no timer
// pending. Every pause is capped at a few milliseconds (the maximum retry
// wait), so a worker that makes no progress for many seconds is stuck.
// At the end every slot is back and no probe is marked out.
//
// The scripts come from a seed, printed on failure; set
// HTTPENRICH_LIVENESS_SEED to replay one (the interleaving of the
// goroutines is not replayed, the script is).
func TestAdaptiveLiveness(t *testing.T) {
	seeds := 12
	if testing.Short() {
		seeds = 4
	}
	var base uint64
	if s := os.Getenv(livenessSeedEnv); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", livenessSeedEnv, s, err)
		}
		base, seeds = v, 1
	} else {
		base = rand.Uint64()
	}
	for i := range seeds {
		seed := base + uint64(i)
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			if !livenessRun(t, seed) {
				t.Fatalf("replay with %s=%d", livenessSeedEnv, seed)
			}
		})
	}
}

// scriptedErr is a transport error of the script.
type scriptedErr struct {
	msg     string
	timeout bool
}

func (e scriptedErr) Error() string   { return e.msg }
func (e scriptedErr) Timeout() bool   { return e.timeout }
func (e scriptedErr) Temporary() bool { return false }

var _ net.Error = scriptedErr{}

// slowBody is a response body that takes a while to close.
type slowBody struct {
	io.Reader
	delay time.Duration
}

func (b slowBody) Close() error {
	time.Sleep(b.delay) // the script's slow body, not synchronisation
	return nil
}

// script is one attempt's answer.
type script struct {
	cancelBefore bool          // the context ends before admit
	cancelAfter  time.Duration // > 0: the context ends this long after admit starts
	err          error         // a transport error instead of a response
	status       int
	header       http.Header
	bodyDelay    time.Duration
}

func randomScript(r *rand.Rand) script {
	var s script
	switch r.IntN(20) {
	case 0:
		s.cancelBefore = true
	case 1, 2:
		s.cancelAfter = time.Duration(r.IntN(2000)) * time.Microsecond
	}
	switch r.IntN(12) {
	case 0:
		s.err = scriptedErr{msg: "i/o timeout", timeout: true}
		return s
	case 1:
		s.err = fmt.Errorf("read: %w", syscall.ECONNRESET)
		return s
	case 2:
		s.err = fmt.Errorf("dial: %w", syscall.ECONNREFUSED)
		return s
	case 3:
		s.err = context.DeadlineExceeded
		return s
	}
	statuses := []int{200, 200, 200, 200, 201, 204, 301, 400, 404, 408, 422, 429, 429, 429, 500, 501, 502, 503, 503, 504}
	s.status = statuses[r.IntN(len(statuses))]
	s.header = http.Header{}
	switch r.IntN(8) {
	case 0:
		s.header.Set("Retry-After", "0")
	case 1:
		s.header.Set("Retry-After", strconv.Itoa(1+r.IntN(3)))
	case 2:
		s.header.Set("Retry-After", time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat))
	case 3:
		s.header.Set("Retry-After", time.Now().Add(2*time.Second).UTC().Format(http.TimeFormat))
	case 4:
		s.header.Set("Retry-After", "soon")
	}
	// Resets as Unix times in milliseconds, 20 ms ahead: a spent budget
	// pauses, a low one paces (at 50 requests/s at the slowest).
	reset := strconv.FormatInt(time.Now().Add(20*time.Millisecond).UnixMilli(), 10)
	switch r.IntN(10) {
	case 0:
		s.header.Set("X-RateLimit-Limit", "10")
		s.header.Set("X-RateLimit-Remaining", "0")
		s.header.Set("X-RateLimit-Reset", reset)
	case 1:
		s.header.Set("X-RateLimit-Limit", "100")
		s.header.Set("X-RateLimit-Remaining", strconv.Itoa(1+r.IntN(9)))
		s.header.Set("X-RateLimit-Reset", reset)
	case 2:
		s.header.Set("X-RateLimit-Limit", "100")
		s.header.Set("X-RateLimit-Remaining", "90")
		s.header.Set("X-RateLimit-Reset", "1")
	}
	if r.IntN(5) == 0 {
		s.bodyDelay = time.Duration(r.IntN(1000)) * time.Microsecond
	}
	return s
}

// livenessRun runs one seed's scripts; false when the run stalled or left
// state behind.
func livenessRun(t *testing.T, seed uint64) bool {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	workers := 1 + r.IntN(24)
	maxConc := 1 + r.IntN(20)
	initial := 1 + r.IntN(maxConc)
	hosts := 1 + r.IntN(2)
	attempts := 150 + r.IntN(250)
	const waitMax = 3 * time.Millisecond // caps every pause
	u, err := newUpstreams(&Adaptive{MaxConcurrency: maxConc, InitialConcurrency: initial}, waitMax)
	if err != nil {
		t.Fatal(err)
	}
	scripts := make([]script, attempts)
	for i := range scripts {
		scripts[i] = randomScript(r)
	}
	hostOf := make([]string, attempts)
	for i := range hostOf {
		hostOf[i] = "h" + strconv.Itoa(r.IntN(hosts)) + ".example"
	}

	root, stop := context.WithCancel(context.Background())
	defer stop()
	var next, progress atomic.Int64
	var mu sync.Mutex
	var problems []string
	problem := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		problems = append(problems, fmt.Sprintf(format, args...))
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= attempts || root.Err() != nil {
					return
				}
				livenessAttempt(root, u, hostOf[i], scripts[i], problem)
				progress.Add(1)
			}
		}()
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()

	// No progress for stallAfter while every pause lasts at most waitMax:
	// stuck. A generous bound, for a loaded machine.
	const stallAfter = 15 * time.Second
	last, lastAt := int64(-1), time.Now()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	stalled := false
	for done := false; !done; {
		select {
		case <-finished:
			done = true
		case <-tick.C:
			if p := progress.Load(); p != last {
				last, lastAt = p, time.Now()
			} else if time.Since(lastAt) > stallAfter {
				t.Errorf("seed %d: no progress for %v after %d of %d attempts (%d workers, ceiling %d); %s",
					seed, stallAfter, p, attempts, workers, maxConc, u.describe())
				stalled = true
				stop() // release the stuck workers
				<-finished
				done = true
			}
		}
	}
	for _, p := range problems {
		t.Errorf("seed %d: %s", seed, p)
	}
	if stalled {
		return false
	}
	// Every slot given back, no waiter, no probe marked out.
	u.mu.Lock()
	defer u.mu.Unlock()
	for name, h := range u.hosts {
		h.lim.mu.Lock()
		inflight, waiting, limit := h.lim.inflight, len(h.lim.waiters), h.lim.limit
		h.lim.mu.Unlock()
		h.gate.mu.Lock()
		probeOut := h.gate.probeOut
		h.gate.mu.Unlock()
		if inflight != 0 || waiting != 0 || probeOut || limit < 1 || limit > float64(maxConc) {
			t.Errorf("seed %d: host %s after the run: in flight %d, waiting %d, probe out %v, limit %.2f (ceiling %d)",
				seed, name, inflight, waiting, probeOut, limit, maxConc)
		}
	}
	return !t.Failed()
}

// livenessAttempt plays one scripted attempt as httpx.Transport does.
func livenessAttempt(root context.Context, u *upstreams, host string, s script, problem func(string, ...any)) {
	ctx, cancel := context.WithCancel(root)
	defer cancel()
	if s.cancelBefore {
		cancel()
	}
	if s.cancelAfter > 0 {
		tm := time.AfterFunc(s.cancelAfter, cancel)
		defer tm.Stop()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+host+"/x", nil)
	if err != nil {
		problem("request: %v", err)
		return
	}
	done, err := u.admit(req)
	if err != nil {
		if ctx.Err() == nil || !errors.Is(err, ctx.Err()) {
			problem("admit failed without its context ending: %v", err)
		}
		return
	}
	if s.err != nil {
		done(nil, s.err)
		return
	}
	resp := &http.Response{StatusCode: s.status, Header: s.header, Request: req,
		Body: slowBody{Reader: strings.NewReader("{}"), delay: s.bodyDelay}}
	done(resp, nil)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// describe returns each host's adaptive state, for a failure's message.
func (u *upstreams) describe() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	var b strings.Builder
	for name, h := range u.hosts {
		h.lim.mu.Lock()
		fmt.Fprintf(&b, "host %s: limit %.2f, in flight %d, waiting %d; ", name, h.lim.limit, h.lim.inflight, len(h.lim.waiters))
		h.lim.mu.Unlock()
		h.gate.mu.Lock()
		fmt.Fprintf(&b, "gate probing %v, probe out %v, closed for %v; ", h.gate.probing, h.gate.probeOut, time.Until(h.gate.until).Round(time.Millisecond))
		h.gate.mu.Unlock()
		fmt.Fprintf(&b, "pacer %v/s. ", h.pacer.Limit())
	}
	return b.String()
}
