package tracker

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/afteraction/afteraction/pkg/events"
	store "github.com/afteraction/afteraction/services/tracker/postgres"
)

// metrics are the tracker's own Prometheus metrics; the bus registers its
// message and outbox counters itself.
type metrics struct {
	overdue   prometheus.Counter
	unmatched *prometheus.CounterVec
	actions   *actionsCollector
	// deliveries counts remote calls by bridge and outcome (delivered,
	// retry, rate_limited, failed); inbound counts webhooks by bridge and
	// outcome (applied, stale, ignored, unmatched, unauthenticated, invalid).
	deliveries *prometheus.CounterVec
	inbound    *prometheus.CounterVec
	digests    prometheus.Counter
}

func newMetrics(st *store.Store, log *zap.Logger) *metrics {
	return &metrics{
		overdue: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "afteraction_tracker_overdue_emitted_total",
			Help: "action.overdue events written to the outbox.",
		}),
		unmatched: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "afteraction_tracker_unmatched_status_updates_total",
			Help: "Status updates refused and recorded as unmatched, by kind.",
		}, []string{"kind"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "afteraction_tracker_bridge_deliveries_total",
			Help: "Calls to remote trackers by bridge and outcome (delivered, retry, rate_limited, failed).",
		}, []string{"bridge", "outcome"}),
		inbound: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "afteraction_tracker_bridge_inbound_total",
			Help: "Webhooks from remote trackers by bridge and outcome.",
		}, []string{"bridge", "outcome"}),
		digests: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "afteraction_tracker_digests_emitted_total",
			Help: "action.digest events written to the outbox.",
		}),
		actions: &actionsCollector{store: st, log: log, desc: prometheus.NewDesc(
			"afteraction_tracker_actions", "Improvement actions by status (read from Postgres at scrape time).",
			[]string{"status"}, nil)},
	}
}

// Register adds the service's metrics to reg.
func (s *Service) Register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{s.metrics.overdue, s.metrics.unmatched, s.metrics.actions,
		s.metrics.deliveries, s.metrics.inbound, s.metrics.digests} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// actionsCollector counts actions by status when scraped, so every replica
// reports the same, current numbers.
type actionsCollector struct {
	store *store.Store
	log   *zap.Logger
	desc  *prometheus.Desc
}

func (c *actionsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *actionsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	counts, err := c.store.CountByStatus(ctx)
	if err != nil {
		c.log.Warn("count actions for metrics failed", zap.Error(err))
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	for _, st := range []events.Status{events.StatusOpen, events.StatusInProgress, events.StatusDone, events.StatusWontDo} {
		m, err := prometheus.NewConstMetric(c.desc, prometheus.GaugeValue, float64(counts[st]), string(st))
		if err != nil {
			ch <- prometheus.NewInvalidMetric(c.desc, err)
			return
		}
		ch <- m
	}
}
