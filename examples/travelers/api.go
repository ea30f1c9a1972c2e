package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/mccutchen/go-httpbin/v2/httpbin"
)

// embeddedAPI is an httpbin-compatible API served in-process on loopback,
// the default profile API: /anything echoes the query in "args". Its bulk
// endpoint, POST /bulk/profiles (see bulkProfiles), answers many travelers
// in one request.
type embeddedAPI struct {
	srv  *http.Server
	ln   net.Listener
	done chan error
}

// startEmbeddedAPI listens on a free loopback port and serves go-httpbin.
func startEmbeddedAPI() (*embeddedAPI, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("embedded profile API: %w", err)
	}
	a := &embeddedAPI{
		srv: &http.Server{
			Handler:           apiMux(httpbin.New(httpbin.WithMaxDuration(10 * time.Second))),
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       60 * time.Second,
		},
		ln:   ln,
		done: make(chan error, 1),
	}
	go func() { a.done <- a.srv.Serve(ln) }()
	return a, nil
}

// URL is the profile URL to call on the embedded API.
func (a *embeddedAPI) URL() string { return "http://" + a.ln.Addr().String() + "/anything/profile" }

// BulkURL is the bulk profile URL to call on the embedded API (-bulk).
func (a *embeddedAPI) BulkURL() string { return "http://" + a.ln.Addr().String() + "/bulk/profiles" }

// Close stops the server and waits for it.
func (a *embeddedAPI) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := a.srv.Shutdown(ctx)
	if serr := <-a.done; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

// apiMux serves the bulk endpoint, and everything else with httpbin.
func apiMux(httpbin http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", httpbin)
	mux.HandleFunc("POST /bulk/profiles", bulkProfiles)
	return mux
}

// bulkRequest is the body of a bulk request: the travelers to answer.
type bulkRequest struct {
	Travelers []struct {
		TravelerID   string `json:"traveler_id"`
		TravelerName string `json:"traveler_name"`
	} `json:"travelers"`
}

// maxBulkTravelers is the most travelers bulkProfiles answers at once.
const maxBulkTravelers = 1000

// bulkProfiles answers {"travelers":[{"traveler_id":"1","traveler_name":
// "Ada"},…]} with {"profiles":[…]}: for each traveler, keyed by its
// traveler_id, the echo /anything/profile would give of its query ("args",
// "method", "url"), in reverse order, as APIs may reorder.
func bulkProfiles(w http.ResponseWriter, r *http.Request) {
	var req bulkRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		http.Error(w, "bad request body: "+err.Error(), http.StatusBadRequest)
		return
	}
	if len(req.Travelers) > maxBulkTravelers {
		http.Error(w, fmt.Sprintf("at most %d travelers per request", maxBulkTravelers), http.StatusRequestEntityTooLarge)
		return
	}
	profiles := make([]map[string]any, 0, len(req.Travelers))
	for _, t := range slices.Backward(req.Travelers) {
		q := url.Values{"traveler_id": {t.TravelerID}, "traveler_name": {t.TravelerName}}
		profiles = append(profiles, map[string]any{
			"traveler_id": t.TravelerID,
			"args":        q,
			"method":      http.MethodGet,
			"url":         "http://" + r.Host + "/anything/profile?" + q.Encode(),
		})
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"profiles": profiles})
}
