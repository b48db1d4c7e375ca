package report

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/afteraction/afteraction/pkg/bus"
	"github.com/afteraction/afteraction/pkg/events"
)

// The report service's whole event surface.
//
// Consumes (stream AFTERACTION):
//
//	report-review-completed    afteraction.review.completed   → a new signed report version
//	report-incident-registered afteraction.incident.registered → programme read model
//	report-actions             afteraction.action.>            → programme read model (created, updated, overdue)
//
// Emits (through the outbox):
//
//	afteraction.report.published (afteraction.report.published.v1), ce-subject = incident id,
//	one per committed report version.
//	afteraction.report.programme.published (afteraction.report.programme.published.v1),
//	ce-subject = programme report id, one per programme report version (POST /v1/programme-reports).
const (
	DurableReviewCompleted    = "report-review-completed"
	DurableIncidentRegistered = "report-incident-registered"
	DurableActions            = "report-actions"
)

// Subscription is one consumer and the handler it runs; Write, when set,
// takes what it can of each batch with a few statements first (bus.InOneTxSet).
type Subscription struct {
	Config  bus.ConsumerConfig
	Handler bus.Handler
	Write   bus.BatchWriter
}

// Run consumes on b until ctx is cancelled, one transaction of pool per batch.
func (s Subscription) Run(ctx context.Context, b *bus.Bus, pool *pgxpool.Pool) error {
	if s.Write == nil {
		return b.ConsumeInTx(ctx, s.Config, pool, s.Handler)
	}
	return b.ConsumeBatch(ctx, s.Config, bus.InOneTxSet(pool, s.Write, s.Handler))
}

// incidentRecorder is a read model that records registered incidents set-wise
// (PostgresStore.RecordIncidents).
type incidentRecorder interface {
	RecordIncidents(ctx context.Context, tx pgx.Tx, ms []*bus.Message) ([]*bus.Message, error)
}

// Subscriptions returns every consumer of the service; each runs in batches,
// one transaction per batch and each message in a savepoint of it
// (bus.ConsumeInTx); registered incidents are recorded set-wise for the whole
// batch first when the read model can (RecordIncidents). The read-model consumers take bus.TxBatchSize messages at a
// time; the review consumer takes one, because a report's render and
// object-store put dwarf its commit, and its ack wait leaves room for them.
func Subscriptions(svc *Service, proj Projector) []Subscription {
	var recordIncidents bus.BatchWriter
	if r, ok := proj.Model.(incidentRecorder); ok {
		recordIncidents = r.RecordIncidents
	}
	return []Subscription{
		{
			Config: bus.ConsumerConfig{Durable: DurableReviewCompleted, Stream: bus.StreamAfteraction,
				Subjects: []string{events.SubjectReviewCompleted}, AckWait: 2 * time.Minute, BatchSize: 1},
			Handler: bus.Typed(events.TypeReviewCompleted, svc.HandleReviewCompleted),
		},
		{
			Config: bus.ConsumerConfig{Durable: DurableIncidentRegistered, Stream: bus.StreamAfteraction,
				Subjects: []string{events.SubjectIncidentRegistered}, BatchSize: bus.TxBatchSize,
				Prepare: bus.PrepareTyped[events.IncidentRegistered](events.TypeIncidentRegistered)},
			Handler: bus.Typed(events.TypeIncidentRegistered, proj.IncidentRegistered),
			Write:   recordIncidents,
		},
		{
			Config: bus.ConsumerConfig{Durable: DurableActions, Stream: bus.StreamAfteraction,
				Subjects: []string{"afteraction.action.>"}, BatchSize: bus.TxBatchSize},
			Handler: actionHandler(proj),
		},
	}
}

// actionHandler dispatches the action events by ce-type; an unknown type is
// permanent (dead-lettered), as bus.Typed does for a single type.
func actionHandler(proj Projector) bus.Handler {
	byType := map[string]bus.Handler{
		events.TypeActionCreated: bus.Typed(events.TypeActionCreated, proj.ActionCreated),
		events.TypeActionUpdated: bus.Typed(events.TypeActionUpdated, proj.ActionUpdated),
		events.TypeActionOverdue: bus.Typed(events.TypeActionOverdue, proj.ActionOverdue),
	}
	return func(ctx context.Context, m *bus.Message) error {
		h, ok := byType[m.Envelope.Type]
		if !ok {
			return bus.Permanent(fmt.Errorf("ce-type %q on %s: this consumer takes action.created, .updated and .overdue", m.Envelope.Type, m.Subject))
		}
		return h(ctx, m)
	}
}
