// Package httpenrich provides the default batchenrich.Enricher: one HTTP
// request per item, sent through go-retryablehttp with a tuned connection
// pool, per-attempt timeouts, capped retries, bounded reads, an optional
// rate limit, and a validation step that turns each JSON response into the
// item's result or an item error.
//
// # Requests
//
// Config.URL is a template such as "https://api.example.com/users/{id}";
// Config.Request returns, per item, the path parameters (escaped as one
// path segment each), query parameters, headers and an optional JSON body.
// A path parameter the template lacks, or one it has that Params.Path
// lacks, fails the item; list the keys Request sets in Config.PathParams
// and New refuses a URL they cannot fill, before any item. Errors show the
// URL with its credentials masked (userinfo, credential-like query
// parameters such as api_key or token).
// The response body is read up to Config.MaxBodyBytes and decoded from JSON
// into the type B (json.RawMessage keeps it raw), then Config.Validate turns
// the item and the Response into the result R, or rejects it. Decoding
// follows encoding/json's rules, done in one pass by the encoding/json/v2
// implementation (github.com/go-json-experiment/json) instead of
// json.Unmarshal's two; a B that can hold a json.Number, which only
// encoding/json knows, is decoded by encoding/json itself.
//
// # Connections
//
// Without a Config.Client, the Enricher builds an *http.Transport sized by
// Config.Pool: DefaultMaxConnections connections per host,
// DefaultMaxKeepAliveConnections kept idle for DefaultKeepAliveExpiry,
// HTTP/2 over TLS. Size it to the Runner's concurrency with
// Pool.ForConcurrency, so that a run reuses its connections from batch to
// batch instead of reopening them, or read it from the environment with
// PoolFromEnv. Close the Enricher to close its idle connections.
//
// With a Config.Client, its transport and settings are used and the client
// itself is never modified; see Config.Client for exactly what is taken.
//
// # Retries
//
// Every attempt gets Config.AttemptTimeout, covering the response headers
// and the whole body. A failed attempt is retried, up to
// Config.MaxAttempts, when Config.CheckRetry says so (DefaultCheckRetry:
// transport errors, timeouts, 408, 429 and 5xx, not other 4xx), after the
// wait Config.Backoff computes (DefaultBackoff: exponential with jitter,
// honouring Retry-After), never longer than Config.RetryWaitMax. Retries
// stop as soon as the item's context ends. Config.RateLimit caps the
// requests per second of the whole run, retries included.
//
// # Adapting to the upstream
//
// With Config.Adaptive, the Enricher finds and follows what each host
// admits instead of a fixed concurrency: an AIMD limit per host on the
// requests in flight (growing while answers are fast and the limit is
// used; lowered on overload — 429s, bursts of 502/503/504, timeouts and
// connection failures across many items, sharp latency growth — but not on
// items failing on their own, at most once per round trip, never above
// Adaptive.MaxConcurrency nor below 1; kept below a level the host refused
// for a while instead of probing it again at once); Retry-After honoured
// per request, and a gate per host that holds every worker's requests
// after a host-wide refusal's Retry-After and then lets one probe through;
// and the rate-limit headers (the IETF draft's
// RateLimit and RateLimit-Policy, X-RateLimit-*) read to slow down before
// being refused. Each change of a limit is reported to the Runner
// (batchenrich.ReportLimitChange: Report.Limits, Tracer.TraceLimitChange,
// log records). See Adaptive for the algorithm and why it was chosen. Without
// Adaptive, none of it runs.
//
// With Config.Budget (sqlbatch.Budget), the host's concurrency ceiling
// and rate are shared with other processes: each attempt waits for a
// place under this process's share, which the Budget renews in the
// background. A Budget that adapts (AdaptiveBudget: sqlbatch's with
// BudgetConfig.Adaptive) needs Config.Adaptive and is told the host's
// limit and its gate's pauses and probes, so that during an outage one
// process probes for the fleet.
//
// # Idempotency keys
//
// With Config.IdempotencyKey, every request carries an Idempotency-Key
// header derived from the run key (batchenrich.RunKeyFromContext) and the
// item's key (batchenrich.Keyer, or Config.ItemKey): the same on every
// attempt and after a crash and resume, so that POST enrichments (payments,
// LLM calls, CRM writes) are safe to retry against servers that honour it.
//
// # Bulk endpoints
//
// NewBulk returns a BulkEnricher, which sends one request per group of
// items, up to Bulk.MaxItems (a batchenrich.BulkEnricher: the Runner forms
// the groups and runs at most Options.Concurrency requests at once).
// Bulk.Request builds a group's request (ids joined in the query or path,
// or a JSON body), bounded by Bulk.MaxRequestBytes (a larger group is split
// in two); Bulk.Entries splits the answer into entries (JSONEntries for the
// usual shapes), matched to items by Bulk.Key, never by position; each
// entry is decoded and validated like a single answer. An item the answer
// omits fails with ReasonMissing, one it reports an error for with
// ReasonItem, each alone; a request that failed as a whole is retried as
// one request, with the policy, Retry-After, Adaptive and Idempotency-Key
// above, and then fails every item of its group.
//
// # Failures
//
// A failed item gets an *Error with the last status, the number of
// attempts and a short Reason, marked batchenrich.Transient,
// batchenrich.Permanent or (a request that cannot be built)
// batchenrich.Fatal, so that batchenrich.Classify works and the Runner
// stops at once on a Fatal one. batchenrich.FailureReason gives the reason
// to store in a column, e.g. "status 404 after 1 attempt":
//
//	var he *httpenrich.Error
//	if errors.As(res.Err, &he) {
//		fmt.Println(he.Status, he.Reason) // 503 unexpected status
//	}
//
// # Logging
//
// go-retryablehttp's records go to Config.Logger (see LeveledLogger); the
// Enricher is silent by default.
package httpenrich
