package httpenrich_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/batchenrich/batchenrich"
	"github.com/batchenrich/batchenrich/batchenrichtest"
	"github.com/batchenrich/batchenrich/httpenrich"
)

// A request that cannot be built is the program's fault: Fatal, and a Run
// stops at its first item instead of storing one invalid row per item.
func TestRequestBuildFailureIsFatal(t *testing.T) {
	t.Parallel()
	srv := newServer(t, script(body(200, `{}`)))
	cfg := travelerConfig(srv.URL)
	cfg.Request = func(traveler) (httpenrich.Params, error) { return httpenrich.Params{}, nil } // {id} missing
	e := mustNew(t, cfg)
	_, err := e.Enrich(testCtx(t), traveler{ID: 1})
	if he := asError(t, err); he.Reason != httpenrich.ReasonRequest {
		t.Fatalf("got %v", err)
	}
	if c := batchenrich.Classify(err); c != batchenrich.ClassFatal {
		t.Fatalf("Classify = %v, want fatal", c)
	}

	items := make([]traveler, 50)
	for i := range items {
		items[i] = traveler{ID: i}
	}
	sink := batchenrichtest.NewSink[traveler, string]()
	r, err := batchenrich.New[traveler, string](batchenrichtest.NewSliceSource(items), e, sink, batchenrich.Options{BatchSize: 10, Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := r.Run(testCtx(t))
	var ie *batchenrich.ItemError
	if !errors.As(err, &ie) || ie.Batch != 1 || ie.Index != 0 || batchenrich.Classify(err) != batchenrich.ClassFatal {
		t.Fatalf("Run = %v, want the first item's Fatal *ItemError", err)
	}
	if len(sink.Batches()) != 0 || rep.Failed != 1 || srv.requests.Load() != 0 {
		t.Fatalf("after a Fatal error: %d batches written, report %+v, %d requests", len(sink.Batches()), rep, srv.requests.Load())
	}
}

// An error Config.Request marks itself keeps its class: bad data in one
// item is recorded, not fatal.
func TestRequestErrorKeepsItsClass(t *testing.T) {
	t.Parallel()
	srv := newServer(t, script(body(200, `{}`)))
	cfg := travelerConfig(srv.URL)
	cfg.Request = func(traveler) (httpenrich.Params, error) {
		return httpenrich.Params{}, batchenrich.Permanent(errors.New("traveler has no id"))
	}
	_, err := mustNew(t, cfg).Enrich(testCtx(t), traveler{ID: 1})
	if he := asError(t, err); he.Reason != httpenrich.ReasonRequest || batchenrich.Classify(err) != batchenrich.ClassPermanent {
		t.Fatalf("got %v (%v)", err, batchenrich.Classify(err))
	}
}

// FailureReason gives the reason without batch, item, method or address.
func TestFailureReason(t *testing.T) {
	t.Parallel()
	srv := newServer(t, script(body(404, `{"error":"no such traveler"}`)))
	e := mustNew(t, travelerConfig(srv.URL))
	sink := batchenrichtest.NewSink[traveler, string]()
	r, err := batchenrich.New[traveler, string](batchenrichtest.NewSliceSource([]traveler{{ID: 1}, {ID: 2}}), e, sink, batchenrich.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Run(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	res := sink.Results()[0]
	if got := batchenrich.FailureReason(res.Err); got != "status 404 after 1 attempt" {
		t.Errorf("FailureReason = %q, want %q (from %q)", got, "status 404 after 1 attempt", res.Err)
	}
	host := strings.TrimPrefix(srv.URL, "http://")
	if !strings.Contains(res.Err.Error(), host) {
		t.Errorf("the full error %q should still name the endpoint", res.Err)
	}
	if n := strings.Count(res.Err.Error(), "httpenrich:") + strings.Count(res.Err.Error(), "batchenrich:"); n != 1 {
		t.Errorf("error %q has %d package prefixes, want 1", res.Err, n)
	}

	for _, c := range []struct {
		err  *httpenrich.Error
		want string
	}{
		{&httpenrich.Error{Reason: httpenrich.ReasonStatus, Status: 503, Attempts: 4}, "status 503 after 4 attempts"},
		{&httpenrich.Error{Reason: httpenrich.ReasonTransport, Attempts: 3, URL: "http://10.1.2.3:8080/x",
			Err: &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 8080}, Err: errors.New("connect: connection refused")}},
			"transport error: dial: connect: connection refused (after 3 attempts)"},
		{&httpenrich.Error{Reason: httpenrich.ReasonInvalid, Status: 200, Attempts: 1, Err: errors.New("missing name")}, "invalid response: missing name (status 200, after 1 attempt)"},
		{&httpenrich.Error{Reason: httpenrich.ReasonRequest, Err: errors.New(`missing path parameter "id"`)}, `bad request: missing path parameter "id"`},
		{&httpenrich.Error{Reason: httpenrich.ReasonCanceled, Err: context.Canceled}, "canceled: context canceled"},
	} {
		wrapped := &batchenrich.ItemError{Batch: 3, Index: 7, Key: "k", Err: batchenrich.Transient(c.err)}
		if got := batchenrich.FailureReason(wrapped); got != c.want {
			t.Errorf("FailureReason(%v) = %q, want %q", fmt.Sprint(c.err), got, c.want)
		}
	}
}
