package httpenrich

import (
	"context"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/batchenrich/batchenrich"
)

// Budget is a budget for one upstream shared with other processes (see
// Config.Budget): it hands out this process's share of it. The package
// sqlbatch implements it on PostgreSQL (sqlbatch.Budget); this package
// only calls it.
type Budget interface {
	// Upstream returns the host the budget covers, as in a URL:
	// "api.example.com", or "api.example.com:8443" with a port.
	Upstream() string
	// Take waits, honouring ctx, until this process may send a request to
	// the upstream under its share, and returns the function that gives
	// the request's place back (called once, when the request is over:
	// its body closed, or its error returned). It must not do I/O per
	// call: it is called for every attempt.
	Take(ctx context.Context) (release func(), err error)
}

// AdaptiveBudget is a Budget that shares the adaptive limit
// (Config.Adaptive) among the processes (sqlbatch.Budget with
// BudgetConfig.Adaptive). New discovers it on Config.Budget: when Adapts
// reports true, New requires Config.Adaptive, and tells the budget its
// host's limit and the pauses and probes of its gate (see Adaptive). Its
// methods are called as the answers come and must not do I/O.
type AdaptiveBudget interface {
	Budget
	// Adapts reports whether the budget adapts; false makes it a plain
	// Budget, told nothing.
	Adapts() bool
	// LimitChanged reports the host's adaptive limit in this process:
	// its first value, then each change.
	LimitChanged(limit int)
	// Pause reports a host-wide refusal whose Retry-After, d, closed the
	// host's gate: the upstream refuses everything for d. The budget may
	// hold back every process's requests meanwhile, but a prober's.
	Pause(d time.Duration)
	// Resume reports that a probe after a pause got an answer other than
	// a refusal: the host's gate opened.
	Resume()
}

// adaptiveBudget returns b as an AdaptiveBudget when it adapts, else nil.
func adaptiveBudget(b Budget) AdaptiveBudget {
	if ab, ok := b.(AdaptiveBudget); ok && ab.Adapts() {
		return ab
	}
	return nil
}

// checkBudget refuses a Budget covering another host than rawURL's, and
// an adaptive one without Config.Adaptive (adaptive: whether it is set).
// A panic in the Budget's Upstream or Adapts (a nil *T, say) is a
// *batchenrich.ConfigError on Budget wrapping its *batchenrich.PanicError.
func checkBudget(b Budget, rawURL string, adaptive bool) (err error) {
	if b == nil {
		return nil
	}
	defer func() {
		if v := recover(); v != nil {
			err = &batchenrich.ConfigError{Package: "httpenrich", Field: "Budget", Reason: "its Upstream or Adapts panicked",
				Err: &batchenrich.PanicError{Value: v, Stack: debug.Stack()}}
		}
	}()
	if adaptiveBudget(b) != nil && !adaptive {
		return optErr("Budget", "is adaptive (sqlbatch.BudgetConfig.Adaptive) but Config.Adaptive is nil: "+
			"set Config.Adaptive, the limit the budget shares")
	}
	up := b.Upstream()
	u, err := url.Parse(rawURL)
	if err != nil {
		return optErr("Budget", "cannot read the URL's host: "+err.Error())
	}
	if !strings.EqualFold(u.Host, up) {
		return optErr("Budget", "covers "+strconv.Quote(up)+" but URL sends to "+strconv.Quote(u.Host)+
			": a budget is for the host it names (with the port, when the URL has one)")
	}
	return nil
}

// budgetAdmit returns an httpx.Transport.Admit that takes a place under
// b for each attempt to b's host, after next (the adaptive limit and gate,
// or nil): last, so that its rate turns are taken just before sending.
// Attempts to other hosts (a redirect elsewhere) are not budgeted.
func budgetAdmit(b Budget, next func(*http.Request) (func(*http.Response, error), error)) func(*http.Request) (func(*http.Response, error), error) {
	host := b.Upstream()
	return func(req *http.Request) (func(*http.Response, error), error) {
		var done func(*http.Response, error)
		if next != nil {
			var err error
			if done, err = next(req); err != nil {
				return nil, err
			}
		}
		if !strings.EqualFold(req.URL.Host, host) {
			return done, nil
		}
		release, err := b.Take(req.Context())
		if err != nil {
			if done != nil {
				done(nil, err)
			}
			return nil, err
		}
		return func(resp *http.Response, err error) {
			if done != nil {
				done(resp, err) // may wrap resp.Body
			}
			if err != nil {
				release()
				return
			}
			resp.Body = &releaseBody{ReadCloser: resp.Body, release: release}
		}, nil
	}
}
