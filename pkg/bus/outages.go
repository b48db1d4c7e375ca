package bus

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// BucketOutages is the key-value bucket where consumers count, per message,
// the deliveries that failed only because Postgres or NATS was down. The count
// lives in JetStream rather than in the process, so an outage spends none of a
// message's MaxDeliver even when the consumer restarts during it or another
// replica gets the next delivery. Keys are <durable>.<stream>.<stream seq>.
const BucketOutages = "afteraction_outages"

// outageTTL is how long a count is kept after its last update: longer than
// any stream keeps a message, so a count never expires under a live message.
const outageTTL = 120 * 24 * time.Hour

// outageCounts keeps the outage counts of the deliveries this process saw, and
// mirrors them to BucketOutages once open. Deliveries nobody saw fail (the
// process crashed handling them) are counted by nobody, so a message that
// kills the process still ends in the DLQ after MaxDeliver such deliveries.
type outageCounts struct {
	mu sync.Mutex
	n  map[string]uint64
	kv jetstream.KeyValue
}

func outageKey(durable string, m *Message) string {
	return durable + "." + m.Stream + "." + strconv.FormatUint(m.StreamSeq, 10)
}

// open attaches the bucket, creating it when missing. Without it (a NATS user
// not allowed to use it, say) counts stay in memory and the consumer logs why.
func (o *outageCounts) open(ctx context.Context, js jetstream.JetStream, t Topology, log *zap.Logger) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.kv != nil {
		return
	}
	kv, err := ensureOutageBucket(ctx, js, t)
	if err != nil {
		log.Warn("outage counts kept in this process only: a restart during an outage may use up deliveries",
			zap.String("bucket", BucketOutages), zap.Error(err))
		return
	}
	o.kv = kv
}

func ensureOutageBucket(ctx context.Context, js jetstream.JetStream, t Topology) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, BucketOutages)
	if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return kv, err
	}
	storage := jetstream.FileStorage
	if t.Memory {
		storage = jetstream.MemoryStorage
	}
	kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      BucketOutages,
		Description: "per message, deliveries that failed because Postgres or NATS was down",
		TTL:         outageTTL,
		MaxBytes:    64 << 20,
		Storage:     storage,
		Replicas:    orDefault(t.Replicas, 1),
	})
	if errors.Is(err, jetstream.ErrBucketExists) {
		return js.KeyValue(ctx, BucketOutages)
	}
	return kv, err
}

// count returns how many deliveries of m to durable failed for infrastructure
// reasons, as far as anyone recorded.
func (o *outageCounts) count(durable string, m *Message) uint64 {
	key := outageKey(durable, m)
	o.mu.Lock()
	n, kv := o.n[key], o.kv
	o.mu.Unlock()
	if kv == nil {
		return n
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if e, err := kv.Get(ctx, key); err == nil {
		if stored, err := strconv.ParseUint(string(e.Value()), 10, 64); err == nil {
			n = max(n, stored)
		}
	}
	return n
}

// add counts one more infrastructure failure of m.
func (o *outageCounts) add(ctx context.Context, durable string, m *Message, log *zap.Logger) {
	n := o.count(durable, m) + 1
	key := outageKey(durable, m)
	o.mu.Lock()
	if o.n == nil {
		o.n = map[string]uint64{}
	}
	o.n[key] = n
	kv := o.kv
	o.mu.Unlock()
	if kv == nil {
		return
	}
	if _, err := kv.Put(ctx, key, []byte(strconv.FormatUint(n, 10))); err != nil {
		log.Warn("outage count not stored; kept in this process", zap.String("key", key), zap.Error(err))
	}
}

// forget drops the in-process count of a settled message; the stored one
// expires with the bucket's TTL.
func (o *outageCounts) forget(durable string, m *Message) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.n, outageKey(durable, m))
}
