// Package batchenrichtest is a test kit for code built on batchenrich: an
// in-memory Source, a Sink that collects what it is given and checks the
// Runner's guarantees, an Enricher whose latency and failures a test
// scripts, and an in-memory checkpoint store with locks.
//
// They are the fakes batchenrich's own tests use; they are safe for
// concurrent use, and they fail loudly (an error from Err or Check) when the
// code under test breaks a contract, rather than silently accepting it.
package batchenrichtest
