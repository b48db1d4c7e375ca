package intake

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/afteraction/afteraction/pkg/bus"
	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/services/intake/postgres"
	"github.com/afteraction/afteraction/services/intake/webhook"
)

// Service holds intake's use cases: registering batches of inbound incidents,
// accepting incidents over HTTP, and recording what it refuses.
type Service struct {
	store    *postgres.Store
	bus      *bus.Bus
	log      *zap.Logger
	metrics  *metrics
	webhooks webhook.Config
	// unsigned says which sources may deliver webhooks without a secret.
	unsigned map[string]bool
	// unauthByAddress and unauthBySource bound the webhook requests failing
	// authentication that intake keeps (see Config.UnauthenticatedPerMinute).
	unauthByAddress, unauthBySource *keyedLimiter
	now                             func() time.Time
}

// metrics counts what intake did with incidents.
type metrics struct {
	incidents *prometheus.CounterVec
	reusedIDs prometheus.Counter
	unauth    *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{incidents: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "afteraction_intake_incidents_total",
		Help: "Inbound incidents by outcome: registered (first revision), revised (new revision), ignored (unchanged content), duplicate (event seen before), rejected.",
	}, []string{"outcome"})}
	for _, o := range []postgres.Outcome{postgres.Registered, postgres.Revised, postgres.Unchanged, postgres.Duplicate, postgres.Rejected} {
		m.incidents.WithLabelValues(string(o))
	}
	m.reusedIDs = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "afteraction_intake_reused_message_ids_total",
		Help: "Messages whose id an earlier message on the same subject had with other content: applied, not dropped as duplicates; the sender reuses ids.",
	})
	m.unauth = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "afteraction_intake_webhook_unauthenticated_total",
		Help: "Webhook requests that failed authentication (401, 404) by outcome: kept (as a bounded digest in rejects), address_limited or source_limited (answered 429, not kept).",
	}, []string{"outcome"})
	for _, o := range []string{unauthKept, unauthAddressLimited, unauthSourceLimited} {
		m.unauth.WithLabelValues(o)
	}
	for _, c := range []prometheus.Collector{m.incidents, m.reusedIDs, m.unauth} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register intake metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) count(results []postgres.Result) {
	for _, r := range results {
		if r.Outcome == "" { // a message the batch left out
			continue
		}
		m.incidents.WithLabelValues(string(r.Outcome)).Inc()
		if r.ReusedID {
			m.reusedIDs.Inc()
		}
	}
}

// Reject records a payload refused over HTTP (route names where it came in)
// and announces it. It returns the reject id.
func (s *Service) Reject(ctx context.Context, route, source string, raw []byte, inv *Invalid, headers map[string][]string) (string, error) {
	return s.reject(ctx, route, source, raw, inv, headers, 0)
}

// reject is Reject keeping at most keepBytes of raw (0: all of it).
func (s *Service) reject(ctx context.Context, route, source string, raw []byte, inv *Invalid, headers map[string][]string, keepBytes int) (string, error) {
	results, err := s.store.Apply(ctx, []postgres.Message{{
		Subject:    route,
		ReceivedAt: s.now(),
		Raw:        raw,
		Rejected: &postgres.Rejection{Source: source, Reason: inv.Reason, Problems: inv.Problems, Headers: headers,
			KeepBytes: keepBytes},
	}})
	if err != nil {
		return "", fmt.Errorf("record reject from %s: %w", route, err)
	}
	s.metrics.count(results)
	s.log.Info("payload rejected", zap.String("subject", route), zap.String("source", source),
		zap.String("reject_id", results[0].RejectID), zap.String("reason", inv.Reason))
	return results[0].RejectID, nil
}

// Submit publishes a checked incident on incidents.closed.<source>, where the
// consumer registers it like any other; it returns the incident id. An error
// means the incident was not accepted and the caller may retry.
func (s *Service) Submit(ctx context.Context, rev *postgres.Revision) (string, error) {
	return s.submit(ctx, rev, nil)
}

// delivery is a webhook request as the ticketing system sent it.
type delivery struct {
	source  string
	headers map[string][]string
	body    []byte
}

// submit is Submit that first keeps the original webhook request, when there is one.
func (s *Service) submit(ctx context.Context, rev *postgres.Revision, d *delivery) (string, error) {
	env, err := events.New(events.TypeIncidentClosed, "afteraction/intake", rev.IncidentID, rev.Incident)
	if err != nil {
		return "", err
	}
	if d != nil {
		if err := s.store.RecordDelivery(ctx, env.ID, d.source, env.Time, d.headers, d.body); err != nil {
			return "", err
		}
	}
	if err := s.bus.Publish(ctx, events.SubjectIncidentClosedPrefix+rev.Incident.Source, env); err != nil {
		return "", err
	}
	return rev.IncidentID, nil
}
