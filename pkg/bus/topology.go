package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/afteraction/afteraction/pkg/events"
)

// Stream names of the event contract.
const (
	StreamIncidents   = "INCIDENTS"
	StreamAfteraction = "AFTERACTION"
	StreamActions     = "ACTIONS"
	StreamDLQ         = "DLQ"
	// StreamNotify is private to the notify service: events that carry bearer
	// secrets (invitation links), readable only by notify's NATS user.
	StreamNotify = "NOTIFY"
	// BucketReports is the object store bucket holding rendered report PDFs.
	BucketReports = "reports"
)

// Topology says how the streams are stored.
type Topology struct {
	// Replicas per stream: 1 for a single server, 3 in production.
	Replicas int
	// Memory stores streams in memory (tests only); the default is file storage.
	Memory bool
	// DuplicateWindow is how long JetStream drops a repeated Nats-Msg-Id
	// (default two minutes). Exactly-once comes from processed_events, not from this.
	DuplicateWindow time.Duration
}

// EnsureTopology creates or updates the INCIDENTS, AFTERACTION, ACTIONS, DLQ
// and NOTIFY streams and the reports object store. It is idempotent and safe to call from
// every replica of every service at start-up.
func (b *Bus) EnsureTopology(ctx context.Context, t Topology) error {
	storage := jetstream.FileStorage
	if t.Memory {
		storage = jetstream.MemoryStorage
	}
	replicas := orDefault(t.Replicas, 1)
	dup := orDefault(t.DuplicateWindow, 2*time.Minute)
	streams := []jetstream.StreamConfig{
		{Name: StreamIncidents, Subjects: []string{events.SubjectIncidentClosedAll},
			Description: "closed incidents from upstream ticketing systems (canonical JSON)"},
		{Name: StreamAfteraction, Subjects: []string{"afteraction.>"},
			Description: "afteraction domain events"},
		{Name: StreamActions, Subjects: []string{events.SubjectActionStatusAll},
			Description: "action status changes sent back by improvement trackers"},
		{Name: StreamDLQ, Subjects: []string{"dlq.>"},
			Description: "messages a consumer gave up on, with the reason in headers"},
		{Name: StreamNotify, Subjects: []string{events.SubjectNotifyAll},
			Description: "private to notify: invitations and meetings carrying bearer links"},
	}
	for _, sc := range streams {
		sc.Storage = storage
		sc.Replicas = replicas
		sc.Duplicates = dup
		sc.Retention = jetstream.LimitsPolicy
		sc.Discard = jetstream.DiscardOld
		if err := b.ensureStream(ctx, sc); err != nil {
			return fmt.Errorf("ensure stream %s: %w", sc.Name, err)
		}
	}
	if _, err := b.js.ObjectStore(ctx, BucketReports); err == nil {
		return nil
	} else if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return fmt.Errorf("ensure object store %s: %w", BucketReports, err)
	}
	_, err := b.js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      BucketReports,
		Description: "rendered incident report PDFs, one object per report version",
		Storage:     storage,
		Replicas:    replicas,
	})
	if err != nil {
		return fmt.Errorf("ensure object store %s: %w", BucketReports, err)
	}
	return nil
}

// ensureStream creates the stream, or updates it only when its configuration
// differs. Every replica of every service calls this at start-up while others
// are already creating consumers; an update the stream does not need is not
// free (nats-server 2.15 rewrites the store's configuration under consumers
// being created, which its race detector reports).
func (b *Bus) ensureStream(ctx context.Context, want jetstream.StreamConfig) error {
	s, err := b.js.Stream(ctx, want.Name)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		_, err = b.js.CreateStream(ctx, want)
		if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return err
		}
		if s, err = b.js.Stream(ctx, want.Name); err != nil {
			return err
		}
	case err != nil:
		return err
	}
	have := s.CachedInfo().Config
	if slices.Equal(have.Subjects, want.Subjects) && have.Replicas == want.Replicas && have.Storage == want.Storage &&
		have.Duplicates == want.Duplicates && have.Retention == want.Retention && have.Discard == want.Discard &&
		have.Description == want.Description {
		return nil
	}
	_, err = b.js.UpdateStream(ctx, want)
	return err
}

// PutObject stores data under key in bucket, replacing nothing that differs:
// report versions are immutable, so callers use a key per version.
func (b *Bus) PutObject(ctx context.Context, bucket, key string, data []byte) error {
	store, err := b.js.ObjectStore(ctx, bucket)
	if err != nil {
		return fmt.Errorf("open object store %s: %w", bucket, err)
	}
	if _, err := store.PutBytes(ctx, key, data); err != nil {
		return fmt.Errorf("put %s/%s: %w", bucket, key, err)
	}
	return nil
}

// GetObject returns the bytes stored under key in bucket, or an error wrapping
// jetstream.ErrObjectNotFound.
func (b *Bus) GetObject(ctx context.Context, bucket, key string) ([]byte, error) {
	store, err := b.js.ObjectStore(ctx, bucket)
	if err != nil {
		return nil, fmt.Errorf("open object store %s: %w", bucket, err)
	}
	data, err := store.GetBytes(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("get %s/%s: %w", bucket, key, err)
	}
	return data, nil
}
