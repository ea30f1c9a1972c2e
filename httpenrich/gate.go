package httpenrich

import (
	"context"
	"sync"
	"time"
)

// gate holds back the requests to one host after it asked for a pause
// (Retry-After, or a rate-limit budget spent): closed until a time, then
// open to one probe at a time until a probe gets an answer other than 429
// or 503. Its methods are safe for concurrent use.
type gate struct {
	mu       sync.Mutex
	until    time.Time
	probing  bool          // after a pause: one request at a time until one succeeds
	probeOut bool          // a probe is in flight
	changed  chan struct{} // closed (and replaced) when probing ends or a probe returns
}

func newGate() *gate { return &gate{changed: make(chan struct{})} }

// wait returns when a request may be sent, or with ctx's error. probe
// reports that the request is the gate's probe: pass it to done.
func (g *gate) wait(ctx context.Context) (probe bool, err error) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		g.mu.Lock()
		if !g.probing { // the fast path: open
			g.mu.Unlock()
			return false, nil
		}
		d := time.Until(g.until)
		if d <= 0 && !g.probeOut {
			g.probeOut = true
			g.mu.Unlock()
			return true, nil
		}
		changed := g.changed
		g.mu.Unlock()

		var tick <-chan time.Time
		if d > 0 {
			if timer == nil {
				timer = time.NewTimer(d)
			} else {
				timer.Reset(d)
			}
			tick = timer.C
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-changed: // timer.Reset needs no draining since Go 1.23
		case <-tick:
		}
	}
}

// pause closes the gate for d from now (extending, never shortening, a
// pause already set); the requests after it go one probe at a time.
func (g *gate) pause(d time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if u := time.Now().Add(d); u.After(g.until) {
		g.until = u
	}
	g.probing = true
}

// done reports a request's answer: ok when it was not refused (not 429
// nor 503, and not a pause). A probe that is ok opens the gate; one that is
// not lets the next probe go once the gate's time has come. It reports
// whether the answer opened the gate.
func (g *gate) done(probe, ok bool) (opened bool) {
	if !probe && !ok {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if probe {
		// Cleared even when probing has ended meanwhile (an earlier
		// request's success opened the gate): a probe still marked out
		// would hold back every probe of the next pause for good.
		g.probeOut = false
	}
	if !g.probing {
		return false
	}
	// The gate's time has come when now is not before until (as in
	// wait): at the very instant of until, too, where a coarse clock
	// puts a quick probe's answer.
	if ok && !time.Now().Before(g.until) {
		g.probing = false
		opened = true
	}
	close(g.changed)
	g.changed = make(chan struct{})
	return opened
}
