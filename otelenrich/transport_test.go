package otelenrich_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/batchenrich/batchenrich/otelenrich"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/trace"
)

// TestTransportURLRedacted checks that the url.full of an attempt's span
// shows no credential: neither the userinfo nor a credential-like query
// value nor the fragment, while the other query parameters stay.
func TestTransportURLRedacted(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	tel := newTelemetry(t)
	tr, err := otelenrich.New(otelenrich.Config{TracerProvider: tel.tp, MeterProvider: tel.mp})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	base := &http.Transport{}
	defer base.CloseIdleConnections()

	u := strings.Replace(srv.URL, "http://", "http://user:PWSECRET@", 1) +
		"/anything?token=TOKSECRET&jwt=JWTSECRET&X-Amz-Signature=SIGSECRET&traveler_id=7#FRAGSECRET"
	for _, tc := range []struct {
		name string
		opts []otelhttp.Option
		want int // client spans
	}{
		{"span", nil, 1},
		{"filtered", []otelhttp.Option{otelhttp.WithFilter(func(*http.Request) bool { return false })}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tel.spans.Reset()
			ctx, parent := tel.tp.Tracer("test").Start(context.Background(), "parent")
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := (&http.Client{Transport: tr.Transport(base, tc.opts...)}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			parent.End()

			clients := 0
			for _, s := range tel.spans.GetSpans() {
				for _, a := range s.Attributes {
					v := a.Value.Emit()
					if strings.Contains(v, "SECRET") {
						t.Errorf("span %q: %s = %q shows a secret", s.Name, a.Key, v)
					}
					if a.Key == "url.full" {
						if s.SpanKind != trace.SpanKindClient {
							t.Errorf("span %q (%v) got url.full %q", s.Name, s.SpanKind, v)
						}
						clients++
						want := "/anything?token=xxxxx&jwt=xxxxx&X-Amz-Signature=xxxxx&traveler_id=7#xxxxx"
						if !strings.HasSuffix(v, want) || strings.Contains(v, "@") {
							t.Errorf("url.full = %q, want http://host%s", v, want)
						}
					}
				}
			}
			if clients != tc.want {
				t.Errorf("%d spans with url.full, want %d", clients, tc.want)
			}
		})
	}
}
