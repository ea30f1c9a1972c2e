package httpenrich

import (
	"context"
	"math"
	"sync"
	"time"
)

// Adaptive defaults, used for zero fields of Adaptive.
const (
	// DefaultAdaptiveBackoff is the factor a host's limit is multiplied
	// by when it is lowered (the ratio of Netflix concurrency-limits'
	// AIMDLimit).
	DefaultAdaptiveBackoff = 0.9
	// DefaultLatencyTolerance is how many times its long-term average the
	// short-term average latency may reach before the limit is lowered.
	DefaultLatencyTolerance = 2.0
)

// Adaptive configures the per-host adaptation of Config.Adaptive. The zero
// value is not usable: MaxConcurrency is required.
//
// # The limit: AIMD
//
// Each host the Enricher sends to gets a limit on the requests in flight to
// it (attempts, each from sending it to closing its body), adjusted by
// AIMD, additive increase and multiplicative decrease, as in TCP congestion
// control and Netflix concurrency-limits' AIMDLimit:
//
//   - It starts at InitialConcurrency and, until it is first lowered,
//     grows by one per successful answer (doubling per round trip, TCP's
//     slow start); afterwards by one per round trip (1/limit per answer).
//     It grows only when the limit was saturated (every slot taken, or
//     requests waiting) while the request was in flight: a limit that is
//     not used is not evidence.
//   - It is lowered on overload (see "Overload, not failing items"
//     below): multiplied by Backoff, or, for a refusal of the client's
//     own excess, set just below the level it came at. Only requests
//     sent after the last decrease can lower it again, so a burst of
//     refusals to requests sent together counts once: at most one
//     decrease per round-trip window.
//   - It stays between 1 and MaxConcurrency. A request beyond it waits, in
//     order of arrival, honouring its context; waiting is not part of the
//     attempt's timeout, and is not an attempt.
//
// AIMD was chosen over a gradient limiter (Netflix's Gradient2, Envoy's
// adaptive concurrency), which infers overload from latency alone: the APIs
// batch jobs call mostly say so explicitly, with a 429 or 503 answered at
// once, which a latency gradient does not see, while AIMD acts on exactly
// that signal and keeps latency as a second one. It is also a few dozen
// lines with well-known behaviour: it converges on the largest limit the
// host admits, oscillating just under it (between Backoff×K and K).
//
// # Overload, not failing items
//
// Each attempt's answer is one of: a success (any status below 400), a
// refusal (429 Too Many Requests), an overload answer (502 Bad Gateway,
// 503 Service Unavailable, 504 Gateway Timeout, an attempt that timed out
// waiting for its response, a refused or reset connection), or neutral
// (any other 4xx, a 500 or other 5xx, another transport error, an attempt
// ended by its context). The limit is lowered:
//
//   - on every refusal (429);
//   - on an overload answer only when they are broad: more than a tenth of
//     the recent answers (exponentially weighted, 1/64 per answer) are
//     refusals or overload answers, or the answer is host-wide (below).
//     Below a tenth they are taken for items failing on their own: the
//     same ids answering 503 on every attempt while the others succeed do
//     not lower the limit. An item's retries (its second and later
//     attempts) do not count as evidence either way, unless they are the
//     gate's probe: an item failing on every attempt would count once per
//     attempt, and at the end of a batch its retries can be all there is
//     in flight;
//   - when latency grows sharply: the short-term average latency of
//     successful answers (exponentially weighted, 1/16 per answer)
//     exceeds LatencyTolerance times the long-term one (1/256 per
//     answer), as in the gradient limiters' short/long window comparison;
//     the long average makes it robust to the scheduling noise of a busy
//     client, which a comparison with the lowest latency seen is not.
//     Each time the short-term average crosses that bound, the long-term
//     average is then set to it (or to the answer's latency, when the
//     short-term average still lags behind), whether the answer lowered
//     the limit or came to a request sent before the last decrease: one
//     decrease per rise, not one per window while it lasts, nor a second
//     one when the requests sent just after the decrease answer as slowly
//     as those before it.
//
// Neutral answers (404, 400, 500, bodies failing Config.Validate, which
// are successes for the limit) never lower it. The rule has limits: items
// failing with 503 on more than a tenth of their first attempts are read
// as overload; an API that says it is overloaded only with 502/503/504
// (never 429) is followed less tightly, the limit settling where about a
// tenth of the answers are refused (the refused items are retried); and
// a host's own overload seen only in retries is not seen.
//
// Each slot records its level, the requests in flight with it when it was
// granted. A refusal at a level above the latest success's is the
// client's own excess: the host admits fewer at once. It sets the limit
// just below that level (lowering by Backoff at most, since the level is
// noisy), and the limit then stays there, not probing that level again,
// for a second, or for 20 times the refusal's Retry-After (at most a
// minute) when it has one: probing costs refusals, and with Retry-After
// each refused item waits that long, and its batch with it.
//
// With Adaptive, a 429 without Retry-After is retried after one smoothed
// round trip, doubled for each further retry, when that is shorter than
// Config.Backoff's wait: the lowered limit is what slows the requests
// down, and the retry waits for a slot like any request. (Without the
// limit's backoff, a server that admits K requests at once would keep the
// items it refused waiting for the default 100 ms or more, often the last
// ones of a batch, which the whole batch then waits for.)
//
// The reasons a change is reported with (batchenrich.UpstreamLimit.Reason)
// are "growth", "429", "502", "503", "504", "timeout", "connection" and
// "latency".
//
// # Retry-After: per request, and one gate per host
//
// A 429, 502, 503 or 504 with Retry-After delays that item's retry by it
// (DefaultBackoff honours it, capped at Config.RetryWaitMax); the other
// requests to the host go on. It closes the host's gate only when the
// refusal is host-wide: the fourth refusal or overload answer in a row (no
// success between them) to requests sent at levels that had succeeded —
// the host refuses more than the client's excess, as in an outage or a
// spent rate limit. The gate then stays closed until the Retry-After
// (capped at Config.RetryWaitMax): no request to the host is sent, by any
// worker, until it opens. It then lets one request through as a probe,
// and the others follow only once a probe gets an answer other than 429,
// 502, 503, 504 or a transport error; a probe refused with Retry-After
// closes the gate again for it (one probe per Retry-After, whatever the
// level of concurrency it came at). A request waiting at the gate has
// not been sent, so it uses none of its item's attempts; items still fail
// after Config.MaxAttempts attempts, as without Adaptive.
//
// # Rate-limit headers
//
// When a host announces its budget, with the IETF draft's RateLimit and
// RateLimit-Policy headers (draft-ietf-httpapi-ratelimit-headers, both the
// structured "r=…;t=…" form and the older limit=/remaining=/reset= and
// RateLimit-Limit/-Remaining/-Reset forms) or the common
// X-RateLimit-Limit/-Remaining/-Reset (reset in seconds, or a Unix time),
// the Enricher slows down before it is refused: with nothing remaining it
// closes the gate until the reset (capped as above); with little remaining
// (at most a tenth of the limit, or no more than the current concurrency
// limit) it spaces the requests to that host evenly over the time to the
// reset; otherwise it sends freely. Set IgnoreRateLimitHeaders to turn
// this off.
//
// # Across processes
//
// The limit is per process. With an adaptive shared budget
// (Config.Budget, an AdaptiveBudget such as sqlbatch.Budget with
// BudgetConfig.Adaptive), each process's limit for the budget's host
// adapts under its share of the budget (a share below what the host
// admits holds the requests back; the limit, counting the requests
// waiting for it, then grows on to MaxConcurrency), the budget is told
// the limit, and
// a host-wide refusal's pause is the fleet's: the budget holds back every
// other process's requests while one probes. See sqlbatch.Budget.
//
// # Observing
//
// Every change of a host's limit (its integer value) is reported with
// batchenrich.ReportLimitChange: inside a Runner it is summed up in
// Report.Limits, passed to the Tracer (TraceLimitChange), and logged
// (decreases at Info). Enricher.Limits returns the current limits.
type Adaptive struct {
	// MaxConcurrency is the ceiling of each host's limit, required: set it
	// to the Runner's Options.Concurrency (and size Config.Pool with
	// Pool.ForConcurrency of the same number).
	MaxConcurrency int

	// InitialConcurrency is each host's limit before its first answer.
	// Zero means 1. At most MaxConcurrency.
	InitialConcurrency int

	// Backoff multiplies the limit when it is lowered; between 0 and 1
	// (exclusive). Zero means DefaultAdaptiveBackoff.
	Backoff float64

	// LatencyTolerance is how many times the long-term average latency
	// the short-term average may reach before the limit is lowered; more
	// than 1. Zero means DefaultLatencyTolerance. Use math.Inf(1) to ignore
	// latency.
	LatencyTolerance float64

	// IgnoreRateLimitHeaders turns off the reading of RateLimit and
	// X-RateLimit headers.
	IgnoreRateLimitHeaders bool
}

// validate checks a and returns it with defaults filled in.
func (a Adaptive) validate() (Adaptive, error) {
	switch {
	case a.MaxConcurrency <= 0:
		return a, optErr("Adaptive.MaxConcurrency", "required: the ceiling of the limit, usually the Runner's Options.Concurrency")
	case a.InitialConcurrency < 0:
		return a, optErr("Adaptive.InitialConcurrency", "must not be negative")
	case a.InitialConcurrency > a.MaxConcurrency:
		return a, optErr("Adaptive.InitialConcurrency", "must not exceed MaxConcurrency")
	case a.Backoff < 0 || a.Backoff >= 1 || math.IsNaN(a.Backoff):
		return a, optErr("Adaptive.Backoff", "must be between 0 and 1, or 0 for the default")
	case a.LatencyTolerance != 0 && !(a.LatencyTolerance > 1):
		return a, optErr("Adaptive.LatencyTolerance", "must be more than 1, or 0 for the default")
	}
	if a.InitialConcurrency == 0 {
		a.InitialConcurrency = 1
	}
	if a.Backoff == 0 {
		a.Backoff = DefaultAdaptiveBackoff
	}
	if a.LatencyTolerance == 0 {
		a.LatencyTolerance = DefaultLatencyTolerance
	}
	return a, nil
}

// outcome is what an answer says about the host's capacity.
type outcome int

const (
	neutral  outcome = iota // says nothing: a 4xx but 429, a 500, a cancellation
	success                 // a timely answer: may grow the limit
	refused                 // a 429: lowers the limit
	overload                // a 502, 503, 504, a timeout, a refused or reset connection: lowers it when broad
)

// answer is what release is told about an attempt.
type answer struct {
	o      outcome
	reason string        // the reason a decrease is reported with
	rtt    time.Duration // a success's latency, 0 when unknown
	// retryAfter is the answer's Retry-After (capped), or -1 without one.
	retryAfter time.Duration
}

// The weights of the answers' latencies in the short-term and long-term
// averages (exponentially weighted: each answer moves the average by
// 1/weight of its difference), and the answers seen before latency can
// lower the limit.
const (
	shortWeight = 16
	longWeight  = 256
)

// The rule telling overload from failing items.
const (
	// shareWeight is the weight of each answer in the overload share,
	// the exponentially weighted share of the answers that were 429 or
	// overload (1/shareWeight per answer).
	shareWeight = 64
	// broadShare is the overload share above which a 502, 503, 504,
	// timeout or connection failure lowers the limit: below it, they are
	// taken for items failing on their own.
	broadShare = 0.1
	// broadStreak is how many refusals at a level of concurrency that had
	// succeeded, with no success between them, make a refusal host-wide:
	// only then does its Retry-After close the host's gate.
	broadStreak = 4
	// minCeilingHold: after a refusal caused by the concurrency (sent at
	// more requests in flight than the latest success), the limit stays
	// below that level for this long at least.
	minCeilingHold = time.Second
	// ceilingHoldPerRetryAfter: when that refusal carries Retry-After d,
	// for this many times d (probing costs an item d's wait).
	ceilingHoldPerRetryAfter = 20
	// maxCeilingHold caps that time.
	maxCeilingHold = time.Minute
)

// aimd is one host's limit. Its methods are safe for concurrent use.
type aimd struct {
	mu        sync.Mutex
	limit     float64 // in [1, max]
	max       float64
	backoff   float64
	tolerance float64
	slowStart bool

	inflight int
	seq      uint64 // slots granted so far; a slot's number is seq before it
	hold     uint64 // answers to slots numbered below hold cannot lower the limit
	fulls    uint64 // grants that took the last free slot
	waiters  []*waiter

	srtt    time.Duration // short-term average latency of successes, 0 before the first
	lrtt    time.Duration // long-term average latency of successes
	samples int           // successes with a latency

	share   float64 // the overload share of the answers
	okLevel int     // the level of the latest success, 0 before the first
	streak  int     // refusals at a level <= okLevel since the latest success

	// ceil, until ceilUntil: a level of concurrency the host refused
	// (the limit set by the latest explained refusal, plus one); the
	// limit stays below it.
	ceil      int
	ceilUntil time.Time
}

// slot is a granted place among the requests in flight.
type slot struct {
	seq   uint64
	fulls uint64 // aimd.fulls before the slot was granted
	level int    // requests in flight with this one, when it was granted
}

type waiter struct {
	ready chan struct{} // closed when granted
	s     slot
}

// change is what an answer did: the change of the integer limit (from ==
// to means none), and whether the answer was a host-wide refusal, whose
// Retry-After closes the gate.
type change struct {
	from, to int
	reason   string
	hostWide bool
}

func newAIMD(a Adaptive) *aimd {
	return &aimd{
		limit:     float64(a.InitialConcurrency),
		max:       float64(a.MaxConcurrency),
		backoff:   a.Backoff,
		tolerance: a.LatencyTolerance,
		slowStart: true,
	}
}

// Limit returns the current limit.
func (l *aimd) Limit() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int(l.limit)
}

// acquire waits for a slot, in order of arrival, until ctx ends.
func (l *aimd) acquire(ctx context.Context) (slot, error) {
	l.mu.Lock()
	if len(l.waiters) == 0 && l.inflight < int(l.limit) {
		s := l.grant()
		l.mu.Unlock()
		return s, nil
	}
	w := &waiter{ready: make(chan struct{})}
	l.waiters = append(l.waiters, w)
	l.mu.Unlock()
	select {
	case <-w.ready:
		return w.s, nil
	case <-ctx.Done():
		l.mu.Lock()
		defer l.mu.Unlock()
		select {
		case <-w.ready: // granted meanwhile: give it back
			l.inflight--
			l.wake()
		default:
			for i, x := range l.waiters {
				if x == w {
					l.waiters = append(l.waiters[:i], l.waiters[i+1:]...)
					break
				}
			}
		}
		return slot{}, ctx.Err()
	}
}

// grant takes a slot; l.mu is held.
func (l *aimd) grant() slot {
	l.inflight++
	s := slot{seq: l.seq, fulls: l.fulls, level: l.inflight}
	l.seq++
	if l.inflight >= int(l.limit) {
		l.fulls++
	}
	return s
}

// wake grants slots to waiters while the limit allows; l.mu is held.
func (l *aimd) wake() {
	for len(l.waiters) > 0 && l.inflight < int(l.limit) {
		w := l.waiters[0]
		l.waiters[0] = nil
		l.waiters = l.waiters[1:]
		w.s = l.grant()
		close(w.ready)
	}
}

// release gives s back with what its answer said, and returns the change
// of the limit it caused.
func (l *aimd) release(s slot, a answer) change {
	return l.releaseAt(s, a, time.Now())
}

func (l *aimd) releaseAt(s slot, a answer, now time.Time) change {
	l.mu.Lock()
	defer l.mu.Unlock()
	saturated := l.fulls > s.fulls || len(l.waiters) > 0
	l.inflight--
	from := int(l.limit)
	c := change{from: from, reason: a.reason}
	bad := a.o == refused || a.o == overload
	if bad {
		l.share += (1 - l.share) / shareWeight
	} else {
		l.share -= l.share / shareWeight
	}
	switch {
	case a.o == success:
		l.okLevel = s.level
		l.streak = 0
		if a.rtt > 0 && l.latencyHigh(a.rtt) {
			c.reason = "latency"
			l.lower(s)
			// The new latency is the norm: one decrease per rise, not one
			// per window while the rise lasts (on a busy client, latency
			// rises that concurrency does not cause). Also when the
			// answer could not lower the limit (its request was sent
			// before the last decrease, which answered this rise), and
			// at the answer's own latency when the short-term average
			// still lags behind it: otherwise the answers to the requests
			// sent just after the decrease, as slow as the ones before,
			// would read the same rise as a new one and lower it again.
			l.lrtt = max(l.srtt, a.rtt)
		} else if saturated && l.limit < l.cap(now) {
			if l.slowStart {
				l.limit++
			} else {
				l.limit += 1 / l.limit
			}
			l.limit = min(l.limit, l.cap(now))
			c.reason = "growth"
		}
	case bad:
		// A refusal at a level above the latest success's is explained by
		// the concurrency; one at a level that had succeeded is not: the
		// host refuses more than this client's excess.
		explained := l.okLevel > 0 && s.level > l.okLevel
		if !explained {
			l.streak++
			c.hostWide = l.streak >= broadStreak
		}
		if a.o != refused && l.share <= broadShare && !c.hostWide {
			break // taken for an item failing on its own
		}
		if !explained || a.o != refused {
			// Not the client's excess, or an overload answer (a 503 of an
			// outage comes at any level): lowered by the backoff, no
			// level remembered.
			l.lower(s)
			break
		}
		// A 429 explained by the concurrency. The host admits fewer than
		// s.level at once: lower the limit
		// below that level, by the backoff at most (the level is noisy),
		// and stay there for a while rather than probing again at once
		// (probing costs refusals, and with Retry-After an item's wait).
		// Once per window, like a decrease.
		if s.seq < l.hold {
			break
		}
		hold := minCeilingHold
		if a.retryAfter > 0 {
			hold = max(hold, min(maxCeilingHold, ceilingHoldPerRetryAfter*a.retryAfter))
		}
		l.limit = max(1, min(l.limit, max(float64(s.level-1), l.limit*l.backoff)))
		l.slowStart = false
		l.hold = l.seq
		l.ceil = int(l.limit) + 1
		if u := now.Add(hold); u.After(l.ceilUntil) {
			l.ceilUntil = u
		}
	}
	l.wake()
	c.to = int(l.limit)
	return c
}

// cap returns the highest limit allowed now: the ceiling, or below the
// level remembered from a refusal with Retry-After; l.mu is held.
func (l *aimd) cap(now time.Time) float64 {
	if l.ceil > 0 && now.Before(l.ceilUntil) {
		return max(1, min(l.max, float64(l.ceil-1)))
	}
	return l.max
}

// lower multiplies the limit by the backoff, unless s was granted before
// the last decrease, and reports whether it did; l.mu is held.
func (l *aimd) lower(s slot) bool {
	if s.seq < l.hold {
		return false
	}
	l.limit = max(1, l.limit*l.backoff)
	l.slowStart = false
	l.hold = l.seq
	return true
}

// latencyHigh records rtt and reports whether the short-term average
// latency exceeds the tolerance over the long-term one; l.mu is held.
func (l *aimd) latencyHigh(rtt time.Duration) bool {
	l.samples++
	if l.srtt == 0 {
		l.srtt, l.lrtt = rtt, rtt
		return false
	}
	l.srtt += (rtt - l.srtt) / shortWeight
	l.lrtt += (rtt - l.lrtt) / longWeight
	return l.samples >= longWeight && float64(l.srtt) > l.tolerance*float64(l.lrtt)
}

// smoothedRTT returns the smoothed latency, 0 before the first success.
func (l *aimd) smoothedRTT() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.srtt
}
