package httpenrich

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/internal/httpx"
	"golang.org/x/time/rate"
)

// upstreams holds the adaptive state of each host an Enricher sends to
// (Config.Adaptive).
type upstreams struct {
	cfg     Adaptive
	waitMax time.Duration // caps every pause, like a Retry-After between attempts

	// budget, when Config.Budget adapts (AdaptiveBudget), is told its
	// host's limit and the pauses and probes of its gate.
	budget AdaptiveBudget

	mu    sync.Mutex
	hosts map[string]*upstream
}

// upstream is one host's state.
type upstream struct {
	name  string
	lim   *aimd
	gate  *gate
	pacer *rate.Limiter // rate.Inf unless the host's budget runs low
	// fleet is set when the host is the adaptive budget's (upstreams.budget):
	// its limit, pauses and probes are told to the budget.
	fleet bool
}

func newUpstreams(a *Adaptive, waitMax time.Duration) (*upstreams, error) {
	if a == nil {
		return nil, nil
	}
	cfg, err := a.validate()
	if err != nil {
		return nil, err
	}
	return &upstreams{cfg: cfg, waitMax: waitMax, hosts: make(map[string]*upstream)}, nil
}

// host returns the state of the host named name, creating it.
func (u *upstreams) host(name string) *upstream {
	u.mu.Lock()
	defer u.mu.Unlock()
	h := u.hosts[name]
	if h == nil {
		h = &upstream{name: name, lim: newAIMD(u.cfg), gate: newGate(), pacer: rate.NewLimiter(rate.Inf, 1)}
		u.hosts[name] = h
		if h.fleet = u.budget != nil && strings.EqualFold(name, u.budget.Upstream()); h.fleet {
			u.budget.LimitChanged(u.cfg.InitialConcurrency)
		}
	}
	return h
}

// limits returns each host's current limit.
func (u *upstreams) limits() map[string]int {
	u.mu.Lock()
	hosts := make([]*upstream, 0, len(u.hosts))
	for _, h := range u.hosts {
		hosts = append(hosts, h)
	}
	u.mu.Unlock()
	m := make(map[string]int, len(hosts))
	for _, h := range hosts {
		m[h.name] = h.lim.Limit()
	}
	return m
}

// admit is httpx.Transport.Admit: it waits for a slot under the host's
// limit, then at its gate and its pacer, and returns what records the
// attempt's answer. The slot is taken first so that a request queued for
// one sees a pause set meanwhile.
func (u *upstreams) admit(req *http.Request) (func(*http.Response, error), error) {
	ctx := req.Context()
	h := u.host(req.URL.Host)
	s, err := h.lim.acquire(ctx)
	if err != nil {
		return nil, err
	}
	probe, err := h.gate.wait(ctx)
	if err == nil {
		if err = h.pacer.Wait(ctx); err != nil {
			h.gate.done(probe, false)
		}
	}
	if err != nil {
		h.lim.release(s, answer{o: neutral, retryAfter: -1})
		return nil, err
	}
	// A retry's overload answer is not evidence of its own: an item whose
	// every attempt fails would count once per attempt, and at the end of
	// a batch its retries can be all there is in flight. A probe's is: it
	// is the host's answer on whether the pause is over.
	retry := false
	if st := httpx.StateFrom(ctx); st != nil {
		retry = st.Attempts > 0
	}
	start := time.Now()
	return func(resp *http.Response, err error) {
		if err != nil {
			a := answer{o: neutral, retryAfter: -1}
			if ctx.Err() == nil {
				switch {
				case isTimeout(err):
					a.o, a.reason = overload, "timeout"
				case errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET):
					a.o, a.reason = overload, "connection"
				}
			}
			if retry && !probe && a.o == overload {
				a.o = neutral
			}
			u.finish(ctx, h, s, probe, a, false)
			return
		}
		a, ok := answer{o: success, retryAfter: -1}, true
		switch code := resp.StatusCode; {
		case code == http.StatusTooManyRequests, code == http.StatusBadGateway,
			code == http.StatusServiceUnavailable, code == http.StatusGatewayTimeout:
			a.o, a.reason, ok = overload, strconv.Itoa(code), false
			if code == http.StatusTooManyRequests {
				a.o = refused
			}
			if d, has := RetryAfter(resp, time.Now()); has {
				a.retryAfter = min(d, u.waitMax)
			}
		case code >= 400:
			a.o = neutral
		}
		if !u.cfg.IgnoreRateLimitHeaders {
			if b, has := parseBudget(resp.Header, time.Now()); has {
				pause, perSecond := b.pace(h.lim.Limit())
				if pause > 0 {
					h.gate.pause(min(pause, u.waitMax))
				}
				if perSecond > 0 {
					h.pacer.SetLimit(rate.Limit(perSecond))
				} else {
					h.pacer.SetLimit(rate.Inf)
				}
			}
		}
		if retry && !probe && a.o == overload {
			a.o = neutral
		}
		resp.Body = &releaseBody{ReadCloser: resp.Body, release: func() {
			if a.o == success {
				a.rtt = time.Since(start)
			}
			u.finish(ctx, h, s, probe, a, ok)
		}}
	}, nil
}

// finish gives an attempt's slot back, closes the host's gate for a
// host-wide refusal's Retry-After, and reports a change of the limit.
func (u *upstreams) finish(ctx context.Context, h *upstream, s slot, probe bool, a answer, ok bool) {
	c := h.lim.release(s, a)
	if h.fleet && c.from != c.to {
		u.budget.LimitChanged(c.to)
	}
	// A host-wide refusal closes the gate for its Retry-After, and so does
	// a refused probe: the pause is not over, whatever the level it came
	// at (the requests waiting at the gate hold their slots).
	if (c.hostWide || probe) && a.retryAfter >= 0 {
		h.gate.pause(a.retryAfter)
		if h.fleet {
			u.budget.Pause(a.retryAfter)
		}
	}
	if h.gate.done(probe, ok) && h.fleet {
		u.budget.Resume()
	}
	if c.from != c.to {
		batchenrich.ReportLimitChange(ctx, h.name, c.from, c.to, c.reason)
	}
}

// retryWait is the wait before retry n (from 0) after resp: for a 429
// without Retry-After, one smoothed round trip doubled per retry (the
// lowered limit is what paces the retries), if shorter than d, the
// Backoff's wait; else d.
func (u *upstreams) retryWait(d time.Duration, n int, resp *http.Response) time.Duration {
	if resp == nil || resp.StatusCode != http.StatusTooManyRequests || resp.Request == nil || resp.Request.URL == nil {
		return d
	}
	if _, has := RetryAfter(resp, time.Now()); has {
		return d
	}
	rtt := u.host(resp.Request.URL.Host).lim.smoothedRTT()
	if rtt <= 0 {
		return d
	}
	for i := 0; i < n && rtt < d; i++ {
		rtt *= 2
	}
	return min(d, rtt)
}

// releaseBody calls release once, when the body is closed.
type releaseBody struct {
	io.ReadCloser
	once    sync.Once
	release func()
}

func (b *releaseBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.release)
	return err
}
