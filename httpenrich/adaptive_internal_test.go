package httpenrich

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/batchenrich/batchenrich/internal/httpx"
	"golang.org/x/time/rate"
)

func newTestAIMD(t *testing.T, a Adaptive) *aimd {
	t.Helper()
	a, err := a.validate()
	if err != nil {
		t.Fatal(err)
	}
	a.LatencyTolerance = 1e9 // latency tested on its own
	return newAIMD(a)
}

// take acquires n slots at once, failing if one would wait.
func take(t *testing.T, l *aimd, n int) []slot {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // a slot that is free is granted without looking at ctx
	var out []slot
	for range n {
		s, err := l.acquire(ctx)
		if err != nil {
			t.Fatalf("slot %d of %d not free (limit %d)", len(out)+1, n, l.Limit())
		}
		out = append(out, s)
	}
	return out
}

func TestAIMDSlowStartThenAdditive(t *testing.T) {
	l := newTestAIMD(t, Adaptive{MaxConcurrency: 100})
	if l.Limit() != 1 {
		t.Fatalf("initial limit %d, want 1", l.Limit())
	}
	// Slow start: each round trip with the limit saturated doubles it.
	for _, want := range []int{2, 4, 8, 16} {
		for _, s := range take(t, l, l.Limit()) {
			l.release(s, answer{o: success, rtt: time.Millisecond, retryAfter: -1})
		}
		if got := l.Limit(); got != want {
			t.Fatalf("after a saturated round trip: limit %d, want %d", got, want)
		}
	}
	// A refusal ends slow start: 16 × 0.9 = 14.4.
	ss := take(t, l, 16)
	l.release(ss[0], answer{o: refused, reason: "429", retryAfter: -1})
	if got := l.Limit(); got != 14 {
		t.Fatalf("after a 429: limit %d, want 14", got)
	}
	for _, s := range ss[1:] {
		l.release(s, answer{o: success, rtt: time.Millisecond, retryAfter: -1})
	}
	// Additive: a full saturated window of 15 answers adds about one.
	before := l.limit
	for _, s := range take(t, l, l.Limit()) {
		l.release(s, answer{o: success, rtt: time.Millisecond, retryAfter: -1})
	}
	if d := l.limit - before; d < 0.9 || d > 1.1 {
		t.Fatalf("a saturated window added %.2f, want about 1", d)
	}
}

func TestAIMDGrowsOnlyWhenSaturated(t *testing.T) {
	l := newTestAIMD(t, Adaptive{MaxConcurrency: 100, InitialConcurrency: 10})
	for range 50 {
		s := take(t, l, 1)[0] // one in flight of 10: not saturated
		l.release(s, answer{o: success, rtt: time.Millisecond, retryAfter: -1})
	}
	if got := l.Limit(); got != 10 {
		t.Fatalf("limit %d after unsaturated successes, want 10", got)
	}
}

func TestAIMDOneDecreasePerWindow(t *testing.T) {
	l := newTestAIMD(t, Adaptive{MaxConcurrency: 100, InitialConcurrency: 20})
	ss := take(t, l, 20)
	var changes []change
	for _, s := range ss { // a burst of refusals to requests sent together
		if c := l.release(s, answer{o: refused, reason: "429", retryAfter: -1}); c.from != c.to {
			changes = append(changes, c)
		}
	}
	if len(changes) != 1 || changes[0] != (change{from: 20, to: 18, reason: "429"}) {
		t.Fatalf("changes %+v, want one 20 → 18", changes)
	}
	// A request sent after the decrease may lower it again.
	s := take(t, l, 1)[0]
	if c := l.release(s, answer{o: refused, reason: "503", retryAfter: -1}); c.to != 16 {
		t.Fatalf("next window's refusal: %+v, want 18 → 16", c)
	}
}

func TestAIMDBounds(t *testing.T) {
	l := newTestAIMD(t, Adaptive{MaxConcurrency: 3, InitialConcurrency: 2})
	for range 20 {
		for _, s := range take(t, l, l.Limit()) {
			l.release(s, answer{o: success, rtt: time.Millisecond, retryAfter: -1})
		}
	}
	if got := l.Limit(); got != 3 {
		t.Fatalf("limit %d, want the ceiling 3", got)
	}
	for range 50 {
		s := take(t, l, 1)[0]
		l.release(s, answer{o: refused, reason: "503", retryAfter: -1})
	}
	if got := l.Limit(); got != 1 {
		t.Fatalf("limit %d after many refusals, want the floor 1", got)
	}
}

func TestAIMDLatency(t *testing.T) {
	a, err := Adaptive{MaxConcurrency: 100, InitialConcurrency: 10}.validate()
	if err != nil {
		t.Fatal(err)
	}
	l := newAIMD(a)
	for i := range 300 {
		rtt := 10 * time.Millisecond
		if i%10 == 5 {
			rtt = 60 * time.Millisecond // noise: one answer in ten 6× slower
		}
		s := take(t, l, 1)[0]
		if c := l.release(s, answer{o: success, rtt: rtt, retryAfter: -1}); c.from != c.to {
			t.Fatalf("steady latency changed the limit: %+v", c)
		}
	}
	var c change
	for range 40 {
		s := take(t, l, 1)[0]
		if c = l.release(s, answer{o: success, rtt: 60 * time.Millisecond, retryAfter: -1}); c.from != c.to {
			break
		}
	}
	if c != (change{from: 10, to: 9, reason: "latency"}) {
		t.Fatalf("latency ×6: change %+v, want 10 → 9 for latency", c)
	}
}

// TestAIMDOneLatencyDecreasePerRise: a stall of the client (every request
// in flight answered 20× later) lowers the limit once, not again when the
// requests sent just after the decrease answer as slowly (issue 23's
// failing scenario: 30 → 27 → 24 within 10 ms, below 0.8 × capacity).
func TestAIMDOneLatencyDecreasePerRise(t *testing.T) {
	a, err := Adaptive{MaxConcurrency: 100, InitialConcurrency: 30}.validate()
	if err != nil {
		t.Fatal(err)
	}
	l := newAIMD(a)
	for range 300 { // the norm: 5 ms
		s := take(t, l, 1)[0]
		l.release(s, answer{o: success, rtt: 5 * time.Millisecond, retryAfter: -1})
	}
	var changes []change
	release := func(ss []slot, rtt time.Duration) {
		for _, s := range ss {
			if c := l.release(s, answer{o: success, rtt: rtt, retryAfter: -1}); c.to < c.from {
				changes = append(changes, c)
			}
		}
	}
	// The stall: the 30 in flight answer after 100 ms, then the requests
	// sent after them (after the decrease) just as slowly, for a while.
	release(take(t, l, 30), 100*time.Millisecond)
	for range 3 {
		release(take(t, l, l.Limit()), 100*time.Millisecond)
	}
	if len(changes) != 1 || changes[0] != (change{from: 30, to: 27, reason: "latency"}) {
		t.Fatalf("decreases %+v, want one, 30 → 27 for latency", changes)
	}
	// A new rise, doubling the stalled latency, lowers it again.
	changes = nil
	release(take(t, l, l.Limit()), time.Second)
	if len(changes) != 1 || changes[0].reason != "latency" {
		t.Fatalf("a new rise: decreases %+v, want one for latency", changes)
	}
}

// TestAIMDWaitersInOrderAndCancel runs in a synctest bubble:
// synctest.Wait returns once the acquiring goroutine is blocked, queued
// as a waiter (no polling).
func TestAIMDWaitersInOrderAndCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newTestAIMD(t, Adaptive{MaxConcurrency: 1})
		s0 := take(t, l, 1)[0]
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error)
		go func() { _, err := l.acquire(ctx); errc <- err }()
		synctest.Wait() // it is blocked in acquire
		l.mu.Lock()
		n := len(l.waiters)
		l.mu.Unlock()
		if n != 1 {
			t.Fatalf("%d waiters while one acquire is blocked, want 1", n)
		}
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled wait: %v", err)
		}
		got := make(chan slot)
		go func() { s, _ := l.acquire(context.Background()); got <- s }()
		l.release(s0, answer{o: neutral, retryAfter: -1})
		s1 := <-got
		l.release(s1, answer{o: neutral, retryAfter: -1})
		if l.inflight != 0 || len(l.waiters) != 0 {
			t.Fatalf("in flight %d, waiters %d after all released", l.inflight, len(l.waiters))
		}
	})
}

func TestAdaptiveValidate(t *testing.T) {
	for _, tc := range []struct {
		a     Adaptive
		field string
	}{
		{Adaptive{}, "Adaptive.MaxConcurrency"},
		{Adaptive{MaxConcurrency: 2, InitialConcurrency: 3}, "Adaptive.InitialConcurrency"},
		{Adaptive{MaxConcurrency: 2, InitialConcurrency: -1}, "Adaptive.InitialConcurrency"},
		{Adaptive{MaxConcurrency: 2, Backoff: 1}, "Adaptive.Backoff"},
		{Adaptive{MaxConcurrency: 2, Backoff: -0.5}, "Adaptive.Backoff"},
		{Adaptive{MaxConcurrency: 2, LatencyTolerance: 0.5}, "Adaptive.LatencyTolerance"},
	} {
		_, err := tc.a.validate()
		if err == nil || !contains(err.Error(), tc.field) {
			t.Errorf("%+v: error %v, want one naming %s", tc.a, err, tc.field)
		}
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// TestGateOneProbeAtATime runs in a synctest bubble: synctest.Wait
// returns once a second request is blocked in wait (or passed), so its
// not passing is asserted without waiting for a time.
func TestGateOneProbeAtATime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGate()
		ctx := context.Background()
		if probe, err := g.wait(ctx); probe || err != nil {
			t.Fatalf("open gate: probe %v, err %v", probe, err)
		}
		g.pause(0) // the time has come at once, but probing starts
		probe, err := g.wait(ctx)
		if !probe || err != nil {
			t.Fatalf("first after a pause: probe %v, err %v; want the probe", probe, err)
		}
		second := make(chan bool)
		go func() { p, _ := g.wait(ctx); second <- p }()
		synctest.Wait() // the second request is blocked in wait, or passed
		select {
		case <-second:
			t.Fatal("a second request passed while the probe was out")
		default:
		}
		g.done(true, false) // the probe was refused: the next one probes
		if p := <-second; !p {
			t.Fatal("after a refused probe, the next request is not a probe")
		}
		g.done(true, true) // an answer: open
		if probe, err := g.wait(ctx); probe || err != nil {
			t.Fatalf("after a good probe: probe %v, err %v; want open", probe, err)
		}
		g.pause(time.Hour)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := g.wait(cctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("closed gate with an ended context: %v", err)
		}
	})
}

func TestParseBudget(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	for _, tc := range []struct {
		name string
		h    map[string]string
		want budget
		ok   bool
	}{
		{"none", nil, budget{}, false},
		{"ietf structured", map[string]string{"RateLimit": `"default";r=50;t=30`, "RateLimit-Policy": `"default";q=100;w=60`}, budget{100, 50, 30 * time.Second}, true},
		{"ietf several policies", map[string]string{"RateLimit": `"burst";r=9;t=1, "day";r=3;t=600`}, budget{-1, 3, 600 * time.Second}, true},
		{"ietf dictionary", map[string]string{"RateLimit": "limit=10, remaining=4, reset=7"}, budget{10, 4, 7 * time.Second}, true},
		{"ietf separate", map[string]string{"RateLimit-Limit": "10", "RateLimit-Remaining": "0", "RateLimit-Reset": "2"}, budget{10, 0, 2 * time.Second}, true},
		{"x seconds", map[string]string{"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "5", "X-RateLimit-Reset": "12"}, budget{60, 5, 12 * time.Second}, true},
		{"x unix time", map[string]string{"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "1", "X-RateLimit-Reset": "1700000042"}, budget{5000, 1, 42 * time.Second}, true},
		{"x unix ms", map[string]string{"X-RateLimit-Remaining": "1", "X-RateLimit-Reset": "1700000003000"}, budget{-1, 1, 3 * time.Second}, true},
		{"x past reset", map[string]string{"X-RateLimit-Remaining": "1", "X-RateLimit-Reset": "1600000000"}, budget{-1, 1, 0}, true},
		{"x limit with window", map[string]string{"X-RateLimit-Limit": "100, 100;w=60", "X-RateLimit-Remaining": "99"}, budget{100, 99, 0}, true},
		{"malformed", map[string]string{"X-RateLimit-Remaining": "lots"}, budget{}, false},
		{"huge reset", map[string]string{"RateLimit": `"d";r=0;t=999999999999999`}, budget{-1, 0, 24 * time.Hour}, true},
	} {
		h := http.Header{}
		for k, v := range tc.h {
			h.Set(k, v)
		}
		got, ok := parseBudget(h, now)
		if ok != tc.ok || (ok && got != tc.want) {
			t.Errorf("%s: parseBudget = %+v, %v; want %+v, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

func TestBudgetPace(t *testing.T) {
	for _, tc := range []struct {
		b         budget
		conc      int
		pause     time.Duration
		perSecond float64
	}{
		{budget{100, 0, 2 * time.Second}, 10, 2 * time.Second, 0}, // spent: pause to the reset
		{budget{100, 50, 10 * time.Second}, 10, 0, 0},             // plenty
		{budget{100, 10, 5 * time.Second}, 4, 0, 2},               // a tenth left: 10 over 5 s
		{budget{-1, 8, 4 * time.Second}, 10, 0, 2},                // fewer than the concurrency
		{budget{100, 5, 0}, 10, 0, 0},                             // no reset known: nothing to spread over
	} {
		pause, ps := tc.b.pace(tc.conc)
		if pause != tc.pause || ps != tc.perSecond {
			t.Errorf("%+v.pace(%d) = %v, %v; want %v, %v", tc.b, tc.conc, pause, ps, tc.pause, tc.perSecond)
		}
	}
}

func FuzzParseBudget(f *testing.F) {
	f.Add(`"default";r=50;t=30`, "12", "1700000042")
	f.Add("limit=10, remaining=4, reset=7", "", "")
	f.Fuzz(func(t *testing.T, rl, rem, reset string) {
		h := http.Header{"Ratelimit": {rl}, "X-Ratelimit-Remaining": {rem}, "X-Ratelimit-Reset": {reset}}
		b, ok := parseBudget(h, time.Unix(1_700_000_000, 0))
		if ok && (b.reset < 0 || b.reset > 24*time.Hour || b.remaining < 0) {
			t.Fatalf("budget %+v", b)
		}
		_, _ = b.pace(10)
	})
}

func TestIdempotencyKeyFor(t *testing.T) {
	k := IdempotencyKeyFor("run-1", "item-7")
	if k != IdempotencyKeyFor("run-1", "item-7") {
		t.Fatal("not stable")
	}
	if len(k) != 36 || k[14] != '8' || !contains("89ab", k[19:20]) {
		t.Fatalf("%q is not a version 8 UUID", k)
	}
	for _, other := range []string{IdempotencyKeyFor("run-2", "item-7"), IdempotencyKeyFor("run-1", "item-8"), IdempotencyKeyFor("run-1i", "tem-7")} {
		if other == k {
			t.Fatalf("different run or item, same key %q", k)
		}
	}
}

// TestAdmitReadsTheAnswer: what admit's done function makes of an answer's
// status and headers.
func TestAdmitReadsTheAnswer(t *testing.T) {
	u, err := newUpstreams(&Adaptive{MaxConcurrency: 10, InitialConcurrency: 10}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://api.example/x", nil)
	answer := func(code int, h map[string]string) {
		t.Helper()
		done, err := u.admit(req)
		if err != nil {
			t.Fatal(err)
		}
		resp := &http.Response{StatusCode: code, Header: http.Header{}, Body: http.NoBody, Request: req}
		for k, v := range h {
			resp.Header.Set(k, v)
		}
		done(resp, nil)
		resp.Body.Close()
	}
	h := u.host("api.example")

	answer(200, map[string]string{"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "8", "X-RateLimit-Reset": "4"})
	if got := float64(h.pacer.Limit()); got != 2 {
		t.Errorf("8 left of 100 for 4 s: pacing at %v/s, want 2/s", got)
	}
	answer(200, map[string]string{"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "90", "X-RateLimit-Reset": "4"})
	if h.pacer.Limit() != rate.Inf {
		t.Errorf("90 left of 100: pacing at %v/s, want none", h.pacer.Limit())
	}
	if h.gate.probing {
		t.Fatal("gate closed without a pause")
	}
	// One 503 among successes is an item's: no pause, no decrease.
	answer(503, map[string]string{"Retry-After": "3600"})
	if h.gate.probing || h.lim.Limit() != 10 {
		t.Fatalf("one 503 after successes: gate probing %v, limit %d; want neither a pause nor a decrease", h.gate.probing, h.lim.Limit())
	}
	// A run of them, at a level that succeeded, is the host's.
	for range broadStreak - 1 {
		answer(503, map[string]string{"Retry-After": "3600"})
	}
	if !h.gate.probing || time.Until(h.gate.until) > 5*time.Second {
		t.Errorf("Retry-After: 3600: probing %v, paused for %v; want a pause capped at 5s", h.gate.probing, time.Until(h.gate.until))
	}
	if got := h.lim.Limit(); got != 9 {
		t.Errorf("after a 503: limit %d, want 9", got)
	}
	if u.limits()["api.example"] != 9 {
		t.Errorf("limits() = %v", u.limits())
	}
	// A 429 without Retry-After is retried after about a round trip.
	h.lim.srtt = 10 * time.Millisecond
	resp := &http.Response{StatusCode: 429, Header: http.Header{}, Request: req}
	if d := u.retryWait(time.Second, 0, resp); d != 10*time.Millisecond {
		t.Errorf("retry 0 after a 429: wait %v, want 10ms", d)
	}
	if d := u.retryWait(time.Second, 2, resp); d != 40*time.Millisecond {
		t.Errorf("retry 2 after a 429: wait %v, want 40ms", d)
	}
	resp.Header.Set("Retry-After", "1")
	if d := u.retryWait(700*time.Millisecond, 0, resp); d != 700*time.Millisecond {
		t.Errorf("a 429 with Retry-After: wait %v, want the Backoff's", d)
	}
}

// TestGateProbeOutClearedWhenProbingEnded: a request sent before a pause
// that succeeds after the pause's time ends probing while the probe is
// still out; the probe's answer must still be counted in, or the next
// pause waits for a probe that never returns (the hang of issue 23).
func TestGateProbeOutClearedWhenProbingEnded(t *testing.T) {
	g := newGate()
	g.pause(0) // e.g. a 429 with Retry-After: 0
	probe, err := g.wait(context.Background())
	if !probe || err != nil {
		t.Fatalf("first after a pause: probe %v, err %v; want the probe", probe, err)
	}
	g.done(false, true) // an earlier request's success ends probing
	g.done(true, true)  // then the probe returns
	g.pause(0)          // the next 429 with Retry-After: 0
	// A context already ended: wait returns the probe if one may go at
	// once, and ctx's error only if it would block.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	probe, err = g.wait(ctx)
	if !probe || err != nil {
		t.Fatalf("after the second pause: probe %v, err %v; want a probe at once (no probe is in flight)", probe, err)
	}
}

// ok, fail are the answers of the tests below.
func okAnswer() answer { return answer{o: success, rtt: time.Millisecond, retryAfter: -1} }
func overloadAnswer(reason string, ra time.Duration) answer {
	return answer{o: overload, reason: reason, retryAfter: ra}
}

// TestAIMDItemFailuresAreNotOverload: 503s, 502s and timeouts of a few
// items among successes (4 % of the answers, as 1 % of the items failing
// on every one of 4 attempts), 404s and 500s never lower the limit; the
// same answers in a burst across many items do.
func TestAIMDItemFailuresAreNotOverload(t *testing.T) {
	l := newTestAIMD(t, Adaptive{MaxConcurrency: 40, InitialConcurrency: 30})
	l.slowStart = false
	n := 0
	reasons := []string{"503", "502", "504", "timeout", "connection"}
	for range 200 {
		for _, s := range take(t, l, l.Limit()) {
			n++
			a := okAnswer()
			switch {
			case n%25 == 0:
				a = overloadAnswer(reasons[n/25%len(reasons)], -1)
			case n%7 == 0:
				a = answer{o: neutral, retryAfter: -1} // a 404, a 500
			}
			if c := l.release(s, a); c.to < c.from || c.hostWide {
				t.Fatalf("answer %d (%+v) lowered the limit or was host-wide: %+v", n, a, c)
			}
		}
	}
	if got := l.Limit(); got < 30 {
		t.Fatalf("limit %d, want at least 30", got)
	}
	// A burst: a third of the answers are 503s.
	lowered := false
	for range 20 {
		for i, s := range take(t, l, l.Limit()) {
			a := okAnswer()
			if i%3 == 0 {
				a = overloadAnswer("503", -1)
			}
			if c := l.release(s, a); c.to < c.from {
				lowered = true
			}
		}
	}
	if !lowered {
		t.Fatalf("a third of the answers 503: limit never lowered (%d)", l.Limit())
	}
}

// TestAIMDRetryAfterCeiling: a 429 with Retry-After at a level above the
// latest success's sets the limit just below it, by the backoff at most,
// and the limit does not probe that level again for 20 Retry-Afters.
func TestAIMDRetryAfterCeiling(t *testing.T) {
	l := newTestAIMD(t, Adaptive{MaxConcurrency: 100, InitialConcurrency: 21})
	l.slowStart = false
	now := time.Unix(1_700_000_000, 0)
	ss := take(t, l, 21)
	for _, s := range ss[:20] {
		l.releaseAt(s, okAnswer(), now)
	}
	c := l.releaseAt(ss[20], answer{o: refused, reason: "429", retryAfter: time.Second}, now)
	if c.to != 20 || c.hostWide {
		t.Fatalf("429 at level 21 after successes at 20: %+v, want 21 → 20, not host-wide", c)
	}
	grow := func(at time.Time) {
		for range 50 {
			for _, s := range take(t, l, l.Limit()) {
				l.releaseAt(s, okAnswer(), at)
			}
		}
	}
	grow(now.Add(19 * time.Second))
	if got := l.Limit(); got != 20 {
		t.Fatalf("19 s after: limit %d, want 20 (below the refused level)", got)
	}
	grow(now.Add(21 * time.Second))
	if got := l.Limit(); got <= 20 {
		t.Fatalf("21 s after: limit %d, want it growing again", got)
	}

	// The limit is lowered by the backoff at most: the level is noisy.
	l = newTestAIMD(t, Adaptive{MaxConcurrency: 100, InitialConcurrency: 40})
	l.slowStart = false
	ss = take(t, l, 40)
	l.releaseAt(ss[3], okAnswer(), now) // level 4
	if c := l.releaseAt(ss[4], answer{o: refused, reason: "429", retryAfter: time.Second}, now); c.to != 36 {
		t.Fatalf("429 at level 5 after a success at 4, limit 40: %+v, want 40 → 36", c)
	}
}

// TestAIMDHostWide: refusals at levels that had succeeded, with no success
// between them, are host-wide from the broadStreak-th on; refusals above
// the latest success's level (the limit's own excess) never are.
func TestAIMDHostWide(t *testing.T) {
	l := newTestAIMD(t, Adaptive{MaxConcurrency: 100, InitialConcurrency: 32})
	ss := take(t, l, 32)
	l.release(ss[19], okAnswer()) // level 20
	for _, s := range ss[20:] {   // levels 21..32: the overshoot
		if c := l.release(s, answer{o: refused, reason: "429", retryAfter: time.Second}); c.hostWide {
			t.Fatalf("refusal at level %d over a success at 20 is host-wide", s.level)
		}
	}
	for i, s := range ss[:broadStreak] { // levels 1..: refused too
		c := l.release(s, overloadAnswer("503", time.Second))
		if want := i == broadStreak-1; c.hostWide != want {
			t.Fatalf("refusal %d at level %d: host-wide %v, want %v", i+1, s.level, c.hostWide, want)
		}
	}
	l.release(ss[broadStreak], okAnswer()) // a success ends the streak
	if c := l.release(ss[broadStreak+1], overloadAnswer("503", time.Second)); c.hostWide {
		t.Fatal("host-wide right after a success")
	}
}

// TestAdmitRetriesNotEvidence: the overload answers to an item's retries
// do not count (an item failing on every attempt would count once per
// attempt, and its retries can be all that is in flight at the end of a
// batch); its first attempt's do.
func TestAdmitRetriesNotEvidence(t *testing.T) {
	u, err := newUpstreams(&Adaptive{MaxConcurrency: 10, InitialConcurrency: 10}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	send := func(attemptsBefore int) {
		t.Helper()
		ctx := httpx.WithState(context.Background(), &httpx.State{Attempts: attemptsBefore})
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://api.example/x", nil)
		done, err := u.admit(req)
		if err != nil {
			t.Fatal(err)
		}
		resp := &http.Response{StatusCode: 503, Header: http.Header{"Retry-After": {"1"}}, Body: http.NoBody, Request: req}
		done(resp, nil)
		resp.Body.Close()
	}
	h := u.host("api.example")
	for range 50 {
		send(1)
	}
	if h.lim.Limit() != 10 || h.gate.probing || h.lim.share != 0 {
		t.Fatalf("50 retries answered 503: limit %d, gate probing %v, share %.2f; want none counted", h.lim.Limit(), h.gate.probing, h.lim.share)
	}
	for range broadStreak {
		send(0)
	}
	if h.lim.Limit() >= 10 || !h.gate.probing {
		t.Fatalf("%d first attempts answered 503 with Retry-After: limit %d, gate probing %v; want lowered and paused", broadStreak, h.lim.Limit(), h.gate.probing)
	}
}

// TestAIMDOverloadSetsNoCeiling: a 503 with Retry-After at a level above
// the latest success's (as in an outage: everything refused, whatever the
// level) lowers the limit by the backoff and is not remembered as a
// refused level: the limit grows past it at once. Only a 429 is (an
// outage's 503 at a low level kept a process of a fleet at a limit of 1
// for 20 Retry-Afters).
func TestAIMDOverloadSetsNoCeiling(t *testing.T) {
	l := newTestAIMD(t, Adaptive{MaxConcurrency: 100, InitialConcurrency: 10})
	l.slowStart = false
	now := time.Unix(1_700_000_000, 0)
	ss := take(t, l, 10)
	l.releaseAt(ss[0], okAnswer(), now) // level 1
	l.share = 1                         // broad: the 503 is overload
	c := l.releaseAt(ss[9], answer{o: overload, reason: "503", retryAfter: 2 * time.Second}, now)
	if c.to != 9 {
		t.Fatalf("503 at level 10 after a success at 1: %+v, want 10 → 9", c)
	}
	for _, s := range ss[1:9] {
		l.releaseAt(s, answer{o: neutral, retryAfter: -1}, now)
	}
	l.share = 0
	for range 50 {
		for _, s := range take(t, l, l.Limit()) {
			l.releaseAt(s, okAnswer(), now.Add(time.Second))
		}
	}
	if got := l.Limit(); got <= 10 {
		t.Fatalf("a second after: limit %d, want it growing past the level the 503 came at", got)
	}
}

// TestProbeRefusedPausesAgain: the gate's probe refused with Retry-After
// closes the gate again for it, even when the refusal alone would not be
// host-wide (sent at more requests in flight than the latest success:
// the requests waiting at the gate hold their slots). Before, such a
// probe let the next one go at once: bursts of 4 probes per Retry-After
// in an outage.
func TestProbeRefusedPausesAgain(t *testing.T) {
	u, err := newUpstreams(&Adaptive{MaxConcurrency: 10, InitialConcurrency: 10}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://api.example/x", nil)
	h := u.host("api.example")
	answer := func(code int, retryAfter string) {
		t.Helper()
		done, err := u.admit(req)
		if err != nil {
			t.Fatal(err)
		}
		resp := &http.Response{StatusCode: code, Header: http.Header{}, Body: http.NoBody, Request: req}
		if retryAfter != "" {
			resp.Header.Set("Retry-After", retryAfter)
		}
		done(resp, nil)
		resp.Body.Close()
	}
	answer(200, "") // a success at level 1
	held := take(t, h.lim, 5)
	h.gate.pause(0) // the gate's time has come: the next request probes
	answer(503, "1")
	if !h.gate.probing || time.Until(h.gate.until) <= 0 {
		t.Fatalf("probe refused with Retry-After: 1: probing %v, paused for %v; want the gate closed again", h.gate.probing, time.Until(h.gate.until))
	}
	for _, s := range held {
		h.lim.release(s, answer0())
	}
}

func answer0() answer { return answer{o: neutral, retryAfter: -1} }
