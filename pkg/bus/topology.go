package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

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
	// Limits per stream name; a stream not named, or a zero field, gets the
	// value of DefaultLimits.
	Limits map[string]StreamLimits
}

// StreamLimits bound what a stream may hold. When a stream with DiscardNew is
// full, JetStream refuses new messages (the publisher sees an error and keeps
// the message: upstream retries, the outbox holds it) instead of dropping the
// oldest ones, which may not have been consumed yet.
type StreamLimits struct {
	// MaxBytes is the most the stream stores.
	MaxBytes int64
	// MaxAge is how long a message is kept.
	MaxAge time.Duration
	// MaxMsgSize is the largest message it accepts (at most the server's max_payload).
	MaxMsgSize int32
	// DiscardNew refuses new messages when full instead of dropping old ones.
	DiscardNew bool
}

// DefaultLimits are the limits of each stream of the contract. INCIDENTS and
// AFTERACTION refuse new messages when full, so nothing unconsumed is dropped;
// the DLQ drops its oldest entries (each is also in the service's dead_letters
// table). Every message is at most the 1 MiB max_payload of deploy/nats.
var DefaultLimits = map[string]StreamLimits{
	StreamIncidents:   {MaxBytes: 1 << 30, MaxAge: 30 * 24 * time.Hour, MaxMsgSize: 1 << 20, DiscardNew: true},
	StreamAfteraction: {MaxBytes: 2 << 30, MaxAge: 90 * 24 * time.Hour, MaxMsgSize: 1 << 20, DiscardNew: true},
	StreamActions:     {MaxBytes: 256 << 20, MaxAge: 30 * 24 * time.Hour, MaxMsgSize: 1 << 20, DiscardNew: true},
	StreamDLQ:         {MaxBytes: 512 << 20, MaxAge: 90 * 24 * time.Hour, MaxMsgSize: 1 << 20},
	StreamNotify:      {MaxBytes: 256 << 20, MaxAge: 30 * 24 * time.Hour, MaxMsgSize: 1 << 20, DiscardNew: true},
}

func (t Topology) limits(stream string) StreamLimits {
	l, d := t.Limits[stream], DefaultLimits[stream]
	l.MaxBytes = orDefault(l.MaxBytes, d.MaxBytes)
	l.MaxAge = orDefault(l.MaxAge, d.MaxAge)
	l.MaxMsgSize = orDefault(l.MaxMsgSize, d.MaxMsgSize)
	l.DiscardNew = l.DiscardNew || d.DiscardNew
	return l
}

// EnsureTopology creates or updates the INCIDENTS, AFTERACTION, ACTIONS, DLQ
// and NOTIFY streams and the reports object store. It is idempotent and safe to call from
// every replica of every service at start-up.
//
// A stream whose configuration differs from t is updated; when the update is
// refused (service users may not update streams), EnsureTopology logs a
// warning and carries on with the stream as it is. ApplyTopology fails instead.
func (b *Bus) EnsureTopology(ctx context.Context, t Topology) error {
	return b.ensureTopology(ctx, t, false)
}

// ApplyTopology is EnsureTopology for an operator: a stream update that fails
// is an error (`afteraction topology` runs it as the operator user).
func (b *Bus) ApplyTopology(ctx context.Context, t Topology) error {
	return b.ensureTopology(ctx, t, true)
}

func (b *Bus) ensureTopology(ctx context.Context, t Topology, strict bool) error {
	b.topology = t
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
		l := t.limits(sc.Name)
		sc.MaxBytes, sc.MaxAge, sc.MaxMsgSize = l.MaxBytes, l.MaxAge, l.MaxMsgSize
		sc.Discard = jetstream.DiscardOld
		if l.DiscardNew {
			sc.Discard = jetstream.DiscardNew
		}
		if err := b.ensureStream(ctx, sc, strict); err != nil {
			return fmt.Errorf("ensure stream %s: %w", sc.Name, err)
		}
	}
	if _, err := ensureOutageBucket(ctx, b.js, t); err != nil {
		return fmt.Errorf("ensure bucket %s: %w", BucketOutages, err)
	}
	if _, err := b.js.ObjectStore(ctx, BucketReports); err == nil {
		return nil
	} else if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return fmt.Errorf("ensure object store %s: %w", BucketReports, err)
	}
	_, err := b.js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      BucketReports,
		Description: "rendered incident report PDFs, one object per report version",
		Storage:     storage,
		Replicas:    replicas,
	})
	if err != nil && !errors.Is(err, jetstream.ErrBucketExists) {
		return fmt.Errorf("ensure object store %s: %w", BucketReports, err)
	}
	return nil
}

// ensureStream creates the stream, or updates it only when its configuration
// differs. Every replica of every service calls this at start-up while others
// are already creating consumers; an update the stream does not need is not
// free (nats-server 2.15 rewrites the store's configuration under consumers
// being created, which its race detector reports).
func (b *Bus) ensureStream(ctx context.Context, want jetstream.StreamConfig, strict bool) error {
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
		have.Description == want.Description && have.MaxBytes == want.MaxBytes && have.MaxAge == want.MaxAge &&
		have.MaxMsgSize == want.MaxMsgSize {
		return nil
	}
	// Service users may create the streams but not change them (see
	// deploy/nats/permissions.conf): a changed configuration is applied by
	// whoever may, and until then the stream works as it is.
	uctx, cancel := context.WithTimeout(ctx, updateTimeout)
	defer cancel()
	if _, err = b.js.UpdateStream(uctx, want); err != nil {
		if strict {
			return fmt.Errorf("update: %w", err)
		}
		b.log.Warn("stream configuration differs and could not be updated; it stays as it is until an operator applies it",
			zap.String("stream", want.Name), zap.Error(err))
	}
	return nil
}

// updateTimeout bounds a stream update: a user without the permission gets no
// answer at all (NATS reports the violation asynchronously), only a timeout.
const updateTimeout = 3 * time.Second

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
