package httpx

import (
	"context"
	"io"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// State records what happened to one logical request across its attempts.
// The Transport finds it in the request's context (WithState). Attempts of
// one request run one after the other, so State needs no lock; it is read
// after the request is done.
type State struct {
	// Attempts counts requests sent, not counting redirects.
	Attempts int
	// Status is the status of the last response received, 0 if the last
	// attempt got none.
	Status int
	// Abort, when set, is a failure that must end the request without a
	// retry (the rate limiter's wait failed).
	Abort error
	// Retry is the retry policy's last verdict: true when the request
	// ended because attempts ran out on a retryable failure.
	Retry bool
}

type stateKey struct{}

// WithState returns ctx carrying st.
func WithState(ctx context.Context, st *State) context.Context {
	return context.WithValue(ctx, stateKey{}, st)
}

// StateFrom returns the State in ctx, or nil.
func StateFrom(ctx context.Context) *State {
	st, _ := ctx.Value(stateKey{}).(*State)
	return st
}

// Transport wraps a RoundTripper: before each request it waits on Limiter
// (honouring the request's context), then sends the request under a deadline
// of Timeout that covers the response headers and the reading of the body,
// until the body is closed.
//
// Transport deliberately has no CloseIdleConnections method: go-retryablehttp
// calls http.Client.CloseIdleConnections after every request that fails,
// which would empty a pool shared by a whole run. Close the Base transport's
// idle connections directly instead.
type Transport struct {
	Base    http.RoundTripper
	Timeout time.Duration // 0: none
	Limiter *rate.Limiter // nil: none
	// Admit, when set, is called before each attempt, after Limiter: it
	// waits until the attempt may be sent and returns done, called once
	// with the attempt's response (whose Body done may wrap) or error. An
	// error from Admit ends the attempt like Limiter's.
	Admit func(req *http.Request) (done func(*http.Response, error), err error)
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	st := StateFrom(ctx)
	if t.Limiter != nil {
		if err := t.Limiter.Wait(ctx); err != nil {
			if req.Body != nil {
				req.Body.Close()
			}
			if st != nil && ctx.Err() == nil {
				st.Abort = err
			}
			return nil, err
		}
	}
	var done func(*http.Response, error)
	if t.Admit != nil {
		var err error
		if done, err = t.Admit(req); err != nil {
			if req.Body != nil {
				req.Body.Close()
			}
			if st != nil && ctx.Err() == nil {
				st.Abort = err
			}
			return nil, err
		}
	}
	if st != nil {
		if req.Response == nil { // not a redirect
			st.Attempts++
		}
		st.Status = 0
	}
	if t.Timeout <= 0 {
		resp, err := t.Base.RoundTrip(req)
		if done != nil {
			done(resp, err)
		}
		if err == nil && st != nil {
			st.Status = resp.StatusCode
		}
		return resp, err
	}
	actx, cancel := context.WithTimeout(ctx, t.Timeout)
	resp, err := t.Base.RoundTrip(req.WithContext(actx))
	if done != nil {
		done(resp, err)
	}
	if err != nil {
		cancel()
		return nil, err
	}
	if st != nil {
		st.Status = resp.StatusCode
	}
	resp.Body = &cancelBody{rc: resp.Body, cancel: cancel}
	return resp, nil
}

// cancelBody ends the attempt's context when the body is closed. Reads after
// Close return io.EOF, so that a second close-and-drain (go-retryablehttp
// drains bodies before a retry) is quiet.
type cancelBody struct {
	rc     io.ReadCloser
	cancel context.CancelFunc
	mu     sync.Mutex
	closed bool
}

func (b *cancelBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return 0, io.EOF
	}
	return b.rc.Read(p)
}

func (b *cancelBody) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.mu.Unlock()
	err := b.rc.Close()
	b.cancel()
	return err
}

// ReadLimited reads r to its end, or to limit+1 bytes. tooLarge reports a
// body longer than limit; the bytes read so far are then dropped.
func ReadLimited(r io.Reader, limit int64) (b []byte, tooLarge bool, err error) {
	return ReadLimitedSize(r, limit, -1)
}

// ReadLimitedSize is ReadLimited for a body announcing size bytes (a
// response's ContentLength, -1 when unknown): a size within limit is read
// into one buffer of that size, grown only if the body is longer.
func ReadLimitedSize(r io.Reader, limit, size int64) (b []byte, tooLarge bool, err error) {
	if size < 0 || size > limit || size > maxPresize {
		b, err = io.ReadAll(io.LimitReader(r, limit+1))
	} else {
		lr := io.LimitedReader{R: r, N: limit + 1} // on the stack
		// One byte more than announced, so that reaching EOF needs no
		// growth.
		b = make([]byte, 0, size+1)
		for {
			n, rerr := lr.Read(b[len(b):cap(b)])
			b = b[:len(b)+n]
			if rerr != nil {
				if rerr != io.EOF {
					err = rerr
				}
				break
			}
			if len(b) == cap(b) {
				b = append(b, 0)[:len(b)] // grow: the body is longer than announced
			}
		}
	}
	if int64(len(b)) > limit {
		return nil, true, err
	}
	return b, false, err
}

// maxPresize bounds the buffer ReadLimitedSize allocates up front on the
// word of a Content-Length header.
const maxPresize = 1 << 20
