package httpenrich

import (
	"math"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/batchenrich/batchenrich"
)

// Connection pool defaults, used for zero Pool fields.
const (
	// DefaultMaxConnections bounds the connections to one host, in use or
	// idle (http.Transport.MaxConnsPerHost).
	DefaultMaxConnections = 200
	// DefaultMaxKeepAliveConnections is how many idle connections are
	// kept for reuse (http.Transport.MaxIdleConns and MaxIdleConnsPerHost).
	DefaultMaxKeepAliveConnections = 50
	// DefaultKeepAliveExpiry is how long an idle connection is kept
	// (http.Transport.IdleConnTimeout).
	DefaultKeepAliveExpiry = 30 * time.Second
)

// Environment variables read by PoolFromEnv.
const (
	EnvMaxConnections          = "BATCHENRICH_HTTP_MAX_CONNECTIONS"
	EnvMaxKeepAliveConnections = "BATCHENRICH_HTTP_MAX_KEEPALIVE_CONNECTIONS"
	EnvKeepAliveExpirySeconds  = "BATCHENRICH_HTTP_KEEPALIVE_EXPIRY_SECONDS"
	EnvEnableHTTP2             = "BATCHENRICH_HTTP_ENABLE_HTTP2"
)

// maxKeepAliveExpiry bounds Pool.KeepAliveExpiry and its environment
// variable.
const maxKeepAliveExpiry = 24 * time.Hour

// Pool sizes the connection pool of the transport an Enricher builds when
// it is not given one. The zero value means the defaults.
//
// Go's default transport keeps only 2 idle connections per host, so a run
// with 25 requests in flight would close and reopen connections all the
// time. A Pool keeps MaxKeepAliveConnections idle connections to the host.
// Sized with ForConcurrency, a whole run opens no more connections than its
// concurrency, but for those replacing a closed one: closed by the server,
// or by net/http, which drops rather than pools a connection when it has
// not seen the request's write finish within 50ms of reading the response
// (on a starved CPU).
type Pool struct {
	// MaxConnections bounds the connections to one host, in use or idle;
	// requests beyond it wait for a free connection. Zero means
	// DefaultMaxConnections.
	MaxConnections int
	// MaxKeepAliveConnections bounds the idle connections kept for reuse.
	// Zero means DefaultMaxKeepAliveConnections.
	MaxKeepAliveConnections int
	// KeepAliveExpiry is how long an idle connection is kept. Zero means
	// DefaultKeepAliveExpiry.
	KeepAliveExpiry time.Duration
	// DisableHTTP2 turns off HTTP/2, which is otherwise negotiated over
	// TLS (cleartext requests always use HTTP/1.1).
	DisableHTTP2 bool
}

// ForConcurrency returns p sized for a Runner with n enrichments in flight
// (batchenrich.Options.Concurrency): defaults filled in, MaxConnections set
// to n and MaxKeepAliveConnections raised to at least n. A run then opens at
// most n connections, reused from batch to batch, but for replacements of
// closed ones (see Pool). Capping MaxConnections matters as much as
// keeping n idle: without the cap, net/http dials a new connection for a
// request that finds none idle even while another request is about to
// release one, and the extra connections pile up. A non-positive n returns
// p with its defaults.
func (p Pool) ForConcurrency(n int) Pool {
	p = p.withDefaults()
	if n <= 0 {
		return p
	}
	p.MaxConnections = n
	p.MaxKeepAliveConnections = max(p.MaxKeepAliveConnections, n)
	return p
}

func (p Pool) withDefaults() Pool {
	if p.MaxConnections == 0 {
		p.MaxConnections = DefaultMaxConnections
	}
	if p.MaxKeepAliveConnections == 0 {
		p.MaxKeepAliveConnections = DefaultMaxKeepAliveConnections
	}
	if p.KeepAliveExpiry == 0 {
		p.KeepAliveExpiry = DefaultKeepAliveExpiry
	}
	return p
}

func (p Pool) validate(prefix string) error {
	switch {
	case p.MaxConnections < 0:
		return optErr(prefix+"MaxConnections", "must not be negative")
	case p.MaxKeepAliveConnections < 0:
		return optErr(prefix+"MaxKeepAliveConnections", "must not be negative")
	case p.KeepAliveExpiry < 0:
		return optErr(prefix+"KeepAliveExpiry", "must not be negative")
	case p.KeepAliveExpiry > maxKeepAliveExpiry:
		return optErr(prefix+"KeepAliveExpiry", "must be at most 24h")
	}
	return nil
}

// NewTransport returns an *http.Transport with the pool p (zero fields
// meaning the defaults), proxies from the environment, and the dial and TLS
// handshake timeouts of Go's default transport. It returns an error naming
// the first invalid field.
func NewTransport(p Pool) (*http.Transport, error) {
	if err := p.validate("Pool."); err != nil {
		return nil, err
	}
	p = p.withDefaults()
	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	t := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     !p.DisableHTTP2,
		MaxConnsPerHost:       p.MaxConnections,
		MaxIdleConns:          p.MaxKeepAliveConnections,
		MaxIdleConnsPerHost:   p.MaxKeepAliveConnections,
		IdleConnTimeout:       p.KeepAliveExpiry,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	if p.DisableHTTP2 {
		var protos http.Protocols
		protos.SetHTTP1(true)
		t.Protocols = &protos
	}
	return t, nil
}

// PoolFromEnv returns a Pool read from the environment variables
// BATCHENRICH_HTTP_MAX_CONNECTIONS and
// BATCHENRICH_HTTP_MAX_KEEPALIVE_CONNECTIONS (positive integers),
// BATCHENRICH_HTTP_KEEPALIVE_EXPIRY_SECONDS (a positive number of seconds,
// fractions allowed, at most a day) and BATCHENRICH_HTTP_ENABLE_HTTP2 (a
// boolean as strconv.ParseBool reads it). An unset or empty variable leaves
// its field zero, meaning the default. A malformed value is an
// *batchenrich.ConfigError naming the variable.
func PoolFromEnv() (Pool, error) {
	var p Pool
	var err error
	if p.MaxConnections, err = envInt(EnvMaxConnections); err != nil {
		return Pool{}, err
	}
	if p.MaxKeepAliveConnections, err = envInt(EnvMaxKeepAliveConnections); err != nil {
		return Pool{}, err
	}
	if v := envValue(EnvKeepAliveExpirySeconds); v != "" {
		secs, perr := strconv.ParseFloat(v, 64)
		switch {
		case perr != nil || math.IsNaN(secs) || math.IsInf(secs, 0):
			return Pool{}, optErr(EnvKeepAliveExpirySeconds, strconv.Quote(v)+" is not a number of seconds")
		case secs <= 0:
			return Pool{}, optErr(EnvKeepAliveExpirySeconds, strconv.Quote(v)+" must be positive")
		case secs > maxKeepAliveExpiry.Seconds():
			return Pool{}, optErr(EnvKeepAliveExpirySeconds, strconv.Quote(v)+" must be at most 86400")
		}
		p.KeepAliveExpiry = time.Duration(secs * float64(time.Second))
		if p.KeepAliveExpiry <= 0 {
			return Pool{}, optErr(EnvKeepAliveExpirySeconds, strconv.Quote(v)+" is less than a nanosecond")
		}
	}
	if v := envValue(EnvEnableHTTP2); v != "" {
		on, perr := strconv.ParseBool(v)
		if perr != nil {
			return Pool{}, optErr(EnvEnableHTTP2, strconv.Quote(v)+" is not a boolean (true, false, 1, 0)")
		}
		p.DisableHTTP2 = !on
	}
	return p, nil
}

func envValue(name string) string {
	return strings.TrimSpace(os.Getenv(name))
}

func envInt(name string) (int, error) {
	v := envValue(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, optErr(name, strconv.Quote(v)+" is not a positive integer")
	}
	return n, nil
}

// optErr is this package's *batchenrich.ConfigError about field.
func optErr(field, reason string) error {
	return &batchenrich.ConfigError{Package: "httpenrich", Field: field, Reason: reason}
}
