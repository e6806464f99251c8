// Package metrics serves a waitron server's counters to Prometheus.
// Importing it makes the metrics_listen option work (/metrics, /healthz
// and /readyz on a listener of its own), and Collector gives a collector
// for a registry of the program's own. A program that does not import it
// links no Prometheus code, and refuses metrics_listen with an error
// saying so.
package metrics

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/waitron/waitron"
	"github.com/waitron/waitron/internal/engine"
	"github.com/waitron/waitron/internal/ops"
	"github.com/waitron/waitron/internal/serverkit"
)

func init() { engine.RegisterOps(start) }

// Stater is what Collector reads: *waitron.Server has it.
type Stater interface{ Stats() waitron.Stats }

// Collector returns a Prometheus collector of s's Stats, every metric
// named waitron_… (waitron_requests_total by method and status class,
// waitron_request_duration_seconds, waitron_connections_closed_total by
// reason, …). metrics_listen serves the same on its own listener.
func Collector(s Stater) prometheus.Collector {
	return ops.NewCollector(func() ops.Snapshot { return snapshot(s.Stats()) })
}

// start is the engine's OpsStarter.
func start(s *engine.Server, addr string, reusePort bool, alive, ready func() bool, log *slog.Logger) (engine.OpsListener, error) {
	o, err := ops.Start(addr, reusePort, Collector(serverkit.Wrap(s).(*waitron.Server)), alive, ready, log)
	if err != nil {
		return nil, err
	}
	return o, nil
}

// snapshot is st as the operations package reads it.
func snapshot(st waitron.Stats) ops.Snapshot {
	sn := ops.Snapshot{Open: st.Open, Parked: st.Parked, Running: st.Running, Queued: st.Queued, WritesBlocked: st.WritesBlocked,
		Closed: make(map[string]uint64, len(st.Closed)), Buckets: waitron.DurationBuckets[:], Durations: st.Durations,
		DurationSum: st.DurationSum, BytesIn: st.BytesIn, BytesOut: st.BytesOut, Restarts: st.Restarts,
		AcceptErrors:  st.AcceptErrors,
		SpooledBodies: st.SpooledBodies, SpooledBodyB: st.SpooledBodyBytes,
		SpooledOutputs: st.SpooledOutputs, SpooledOutputB: st.SpooledOutputBytes, Shed: st.Shed}
	for r, n := range st.Closed {
		sn.Closed[r.String()] = n
	}
	for _, r := range st.Requests {
		sn.Requests = append(sn.Requests, ops.Requests{Method: r.Method, StatusClass: r.StatusClass, Count: r.Count})
	}
	return sn
}
