package bus

import "github.com/prometheus/client_golang/prometheus"

// outboxMetrics are the relay's alerting metrics.
type outboxMetrics struct {
	setAsideTotal prometheus.Counter
	setAside      prometheus.Gauge
}

func newOutboxMetrics() outboxMetrics {
	return outboxMetrics{
		setAsideTotal: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "afteraction_outbox_set_aside_total",
			Help: "Outbox events the relay set aside because JetStream refused them MaxAttempts times or they exceed the maximum payload.",
		}),
		setAside: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "afteraction_outbox_set_aside",
			Help: "Outbox events currently set aside, waiting for an operator (alert when above zero).",
		}),
	}
}

func (m outboxMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.setAsideTotal, m.setAside}
}
