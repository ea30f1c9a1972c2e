package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/mccutchen/go-httpbin/v2/httpbin"
)

// embeddedAPI is an httpbin-compatible API served in-process on loopback,
// the default profile API: /anything echoes the query in "args".
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
			Handler:           httpbin.New(httpbin.WithMaxDuration(10 * time.Second)),
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
