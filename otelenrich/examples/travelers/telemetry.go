package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
)

// telemetry is the program's OpenTelemetry SDK: spans to the stdout
// exporter through a batch span processor, metrics to a Prometheus
// registry served over HTTP.
type telemetry struct {
	tp          *sdktrace.TracerProvider
	mp          *sdkmetric.MeterProvider
	propagators propagation.TextMapPropagator
	srv         *http.Server
	served      chan error
	addr        string
	closeTraces func() error
}

// startTelemetry sets up the SDK for cfg; spans go to stdout when
// cfg.traces is "-".
func startTelemetry(cfg config, stdout io.Writer) (*telemetry, error) {
	res := resource.NewWithAttributes(semconv.SchemaURL, semconv.ServiceName("travelers-otel"))
	t := &telemetry{propagators: propagation.TraceContext{}, closeTraces: func() error { return nil }}

	topts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res), sdktrace.WithSampler(sdktrace.AlwaysSample())}
	if cfg.traces != "off" {
		w := stdout
		if cfg.traces != "-" {
			f, err := os.Create(cfg.traces)
			if err != nil {
				return nil, fmt.Errorf("-traces: %w", err)
			}
			w, t.closeTraces = f, f.Close
		}
		exp, err := stdouttrace.New(stdouttrace.WithWriter(w))
		if err != nil {
			t.closeTraces()
			return nil, fmt.Errorf("stdout span exporter: %w", err)
		}
		topts = append(topts, sdktrace.WithBatcher(exp))
	}
	t.tp = sdktrace.NewTracerProvider(topts...)

	mopts := []sdkmetric.Option{sdkmetric.WithResource(res)}
	if cfg.metricsAddr != "" {
		reg := prometheus.NewRegistry()
		exp, err := otelprom.New(otelprom.WithRegisterer(reg))
		if err != nil {
			t.shutdown(context.Background())
			return nil, fmt.Errorf("prometheus exporter: %w", err)
		}
		mopts = append(mopts, sdkmetric.WithReader(exp))
		ln, err := net.Listen("tcp", cfg.metricsAddr)
		if err != nil {
			t.shutdown(context.Background())
			return nil, fmt.Errorf("-metrics-addr: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		t.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		t.addr = ln.Addr().String()
		t.served = make(chan error, 1)
		go func() { t.served <- t.srv.Serve(ln) }()
	}
	t.mp = sdkmetric.NewMeterProvider(mopts...)
	return t, nil
}

// shutdown flushes the spans and stops the metrics server.
func (t *telemetry) shutdown(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	var errs []error
	if t.tp != nil {
		errs = append(errs, t.tp.Shutdown(ctx))
	}
	if t.mp != nil {
		errs = append(errs, t.mp.Shutdown(ctx))
	}
	if t.srv != nil {
		errs = append(errs, t.srv.Shutdown(ctx))
		if err := <-t.served; !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
	}
	errs = append(errs, t.closeTraces())
	return errors.Join(errs...)
}
