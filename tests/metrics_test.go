package tests

import (
	"bufio"
	"context"
	"github.com/waitron/waitron/internal/testutil"
	"io"
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/waitron/waitron/internal/targetapp"
	"github.com/waitron/waitron/metrics"
)

// scrape reads addr's /metrics with Prometheus's own text parser.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return fams
}

// value returns the value of the sample of family name whose labels
// include want (name=value pairs), or -1.
func value(fams map[string]*dto.MetricFamily, name string, want ...string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(want); i += 2 {
			if labels[want[i]] != want[i+1] {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

func get(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// After known traffic, /metrics (parsed with prometheus/common's expfmt)
// counts it; /healthz and /readyz answer 200, and /readyz 503 from the
// moment a graceful shutdown starts.
func TestMetricsAndHealth(t *testing.T) {
	release := make(chan struct{})
	held := make(chan struct{})
	mux := http.NewServeMux()
	mux.Handle("/", targetapp.New())
	mux.HandleFunc("/hold", func(w http.ResponseWriter, r *http.Request) {
		close(held)
		<-release
	})
	ops := testutil.FreeAddr(t)
	s := start(t, mux, "metrics_listen", ops)
	c := s.dial(t)
	br := bufio.NewReader(c)
	for i := 0; i < 3; i++ {
		io.WriteString(c, "GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n")
		testutil.ReadResponse(t, br, http.MethodGet)
	}
	for i := 0; i < 2; i++ {
		io.WriteString(c, "GET /status/404 HTTP/1.1\r\nHost: a\r\n\r\n")
		testutil.ReadResponse(t, br, http.MethodGet)
	}
	io.WriteString(c, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello")
	testutil.ReadResponse(t, br, http.MethodPost)
	bad := s.dial(t)
	io.WriteString(bad, "GARBAGE\r\n\r\n")
	io.ReadAll(bad)
	testutil.WaitFor(t, "the bad request's close to be counted", func() bool {
		return value(scrape(t, ops), "waitron_connections_closed_total", "reason", "bad_request") == 1
	})
	// A response is counted once its worker is done with it, which may be
	// just after the client has it.
	testutil.WaitFor(t, "the 7 responses to be counted", func() bool {
		var n uint64
		for _, r := range s.Stats().Requests {
			n += r.Count
		}
		return n == 7
	})
	fams := scrape(t, ops)
	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"waitron_requests_total", []string{"method", "GET", "code", "2xx"}, 3},
		{"waitron_requests_total", []string{"method", "GET", "code", "4xx"}, 2},
		{"waitron_requests_total", []string{"method", "POST", "code", "2xx"}, 1},
		{"waitron_requests_total", []string{"method", "other", "code", "4xx"}, 1},
		{"waitron_request_duration_seconds", nil, 7},
		{"waitron_connections_open", nil, 1},
		{"waitron_connections_parked", nil, 0},
		{"waitron_dispatch_queue_depth", nil, 0},
		{"waitron_connections_closed_total", []string{"reason", "bad_request"}, 1},
	} {
		if got := value(fams, tc.name, tc.labels...); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	if got := value(fams, "waitron_received_bytes_total"); got <= 0 {
		t.Errorf("waitron_received_bytes_total = %v", got)
	}
	if get(t, "http://"+ops+"/healthz") != 200 || get(t, "http://"+ops+"/readyz") != 200 {
		t.Fatal("healthz or readyz not 200 while serving")
	}
	// A request in flight holds the drain; meanwhile readyz says 503.
	io.WriteString(c, "GET /hold HTTP/1.1\r\nHost: a\r\n\r\n")
	recv(t, held)
	if got := value(scrape(t, ops), "waitron_handlers_running"); got != 1 {
		t.Errorf("waitron_handlers_running = %v with one handler held", got)
	}
	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		stopped <- s.Shutdown(ctx)
	}()
	testutil.WaitFor(t, "readyz to answer 503 during the drain", func() bool { return get(t, "http://"+ops+"/readyz") == 503 })
	if code := get(t, "http://"+ops+"/healthz"); code != 200 {
		t.Errorf("healthz %d during the drain, want 200", code)
	}
	close(release)
	if err := recv(t, stopped); err != nil {
		t.Fatal(err)
	}
	if _, body := testutil.ReadResponse(t, br, http.MethodGet); body != "" {
		t.Errorf("held response body %q", body)
	}
}

// The collector registers in a program's own registry.
func TestCollectorInOwnRegistry(t *testing.T) {
	s := start(t, targetapp.New())
	c := s.dial(t)
	io.WriteString(c, "GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n")
	if _, body := testutil.ReadResponse(t, bufio.NewReader(c), http.MethodGet); body != "Hello, World!" {
		t.Fatalf("body %q", body)
	}
	// A response is counted once its worker is done with it, which may be
	// just after the client has it.
	testutil.WaitFor(t, "the response to be counted", func() bool { return len(s.Stats().Requests) > 0 })
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.Collector(s))
	gathered, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	fams := map[string]*dto.MetricFamily{}
	for _, f := range gathered {
		fams[f.GetName()] = f
	}
	if got := value(fams, "waitron_requests_total", "method", "GET", "code", "2xx"); got != 1 {
		t.Errorf("waitron_requests_total{GET,2xx} = %v, want 1", got)
	}
}
