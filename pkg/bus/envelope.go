package bus

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/afteraction/afteraction/pkg/events"
)

// CloudEvents attribute headers (binary mode of the draft NATS protocol binding).
const (
	HeaderSpecVersion     = "ce-specversion"
	HeaderID              = "ce-id"
	HeaderSource          = "ce-source"
	HeaderType            = "ce-type"
	HeaderTime            = "ce-time"
	HeaderSubject         = "ce-subject"
	HeaderDataContentType = "ce-datacontenttype"
	// HeaderTraceParent and HeaderTraceState carry the CloudEvents
	// distributed-tracing extension (W3C traceparent and tracestate) of the
	// span that published the message; see Options.TracerProvider.
	HeaderTraceParent = "ce-traceparent"
	HeaderTraceState  = "ce-tracestate"
	// HeaderDLQReason and friends describe why a message was dead-lettered.
	HeaderDLQReason    = "afteraction-dlq-reason"
	HeaderDLQService   = "afteraction-dlq-service"
	HeaderDLQSubject   = "afteraction-dlq-subject"
	HeaderDLQStream    = "afteraction-dlq-stream"
	HeaderDLQStreamSeq = "afteraction-dlq-stream-seq"
	HeaderDLQDelivered = "afteraction-dlq-delivered"
	// HeaderDLQOmitted, on a DLQ copy without data, gives the size of the data
	// left out because the copy would have exceeded the maximum payload; the
	// original is at HeaderDLQStream / HeaderDLQStreamSeq.
	HeaderDLQOmitted = "afteraction-dlq-omitted"
)

// NewMsg encodes env for subject as a NATS message: the data as body, the
// CloudEvents attributes as percent-encoded ce-* headers (ce-traceparent and
// ce-tracestate only when env has a trace context) and Nats-Msg-Id = ce-id.
func NewMsg(subject string, env events.Envelope) *nats.Msg {
	m := nats.NewMsg(subject)
	m.Data = env.Data
	m.Header.Set(HeaderSpecVersion, "1.0")
	m.Header.Set(HeaderID, encodeHeader(env.ID))
	m.Header.Set(HeaderSource, encodeHeader(env.Source))
	m.Header.Set(HeaderType, encodeHeader(env.Type))
	m.Header.Set(HeaderTime, env.Time.UTC().Format(time.RFC3339Nano))
	if env.Subject != "" {
		m.Header.Set(HeaderSubject, encodeHeader(env.Subject))
	}
	m.Header.Set(HeaderDataContentType, "application/json")
	if env.TraceParent != "" {
		m.Header.Set(HeaderTraceParent, encodeHeader(env.TraceParent))
		if env.TraceState != "" {
			m.Header.Set(HeaderTraceState, encodeHeader(env.TraceState))
		}
	}
	m.Header.Set(jetstream.MsgIDHeader, env.ID)
	return m
}

// contentIDPrefix starts the id of a message that carried none.
const contentIDPrefix = "sha256:"

// EnvelopeOf decodes the CloudEvents attributes of a received message. A
// message without ce-id (a plain JSON publish from outside) gets its
// Nats-Msg-Id as id, or else "sha256:" and the digest of subject and body;
// consumers append "@<stream sequence>" to the latter, so a redelivery is
// recognised while a later publish of the same body is a new event. The trace
// context is ce-traceparent / ce-tracestate, or, from a publisher that sets
// plain W3C headers, traceparent / tracestate; it is not validated here.
func EnvelopeOf(subject string, h nats.Header, data []byte) events.Envelope {
	env := events.Envelope{
		ID:          decodeHeader(h.Get(HeaderID)),
		Type:        decodeHeader(h.Get(HeaderType)),
		Source:      decodeHeader(h.Get(HeaderSource)),
		Subject:     decodeHeader(h.Get(HeaderSubject)),
		Data:        data,
		TraceParent: decodeHeader(h.Get(HeaderTraceParent)),
		TraceState:  decodeHeader(h.Get(HeaderTraceState)),
	}
	if env.TraceParent == "" {
		env.TraceParent, env.TraceState = h.Get("traceparent"), h.Get("tracestate")
	}
	if t, err := time.Parse(time.RFC3339Nano, h.Get(HeaderTime)); err == nil {
		env.Time = t
	}
	if env.ID == "" {
		env.ID = h.Get(jetstream.MsgIDHeader)
	}
	if env.ID == "" {
		sum := sha256.New()
		sum.Write([]byte(subject))
		sum.Write([]byte{0})
		sum.Write(data)
		env.ID = contentIDPrefix + hex.EncodeToString(sum.Sum(nil))
	}
	return env
}

// Publish sends env on subject and waits for JetStream's PubAck. A copy with the
// same id inside the stream's duplicate window is acknowledged but not stored.
// The publish is a producer span, a child of ctx's span (or else of env's
// trace context), whose context the message carries as ce-traceparent.
func (b *Bus) Publish(ctx context.Context, subject string, env events.Envelope) (err error) {
	env, span := b.startPublish(ctx, subject, env)
	defer func() { endSpan(span, err) }()
	if _, err := b.js.PublishMsg(ctx, NewMsg(subject, env), jetstream.WithMsgID(env.ID)); err != nil {
		return fmt.Errorf("publish %s %s: %w", subject, env.ID, err)
	}
	return nil
}

// PublishEvent builds an envelope for data (see events.New) and publishes it on
// the subject of its type.
func (b *Bus) PublishEvent(ctx context.Context, typ, subject string, data any) (events.Envelope, error) {
	env, err := events.New(typ, "afteraction/"+b.service, subject, data)
	if err != nil {
		return env, err
	}
	natsSubject, err := events.SubjectOf(typ)
	if err != nil {
		return env, err
	}
	return env, b.Publish(ctx, natsSubject, env)
}

// PublishRaw publishes body on subject with the given Nats-Msg-Id and no
// CloudEvents attributes, as an upstream system that only speaks JSON would.
func (b *Bus) PublishRaw(ctx context.Context, subject, msgID string, body []byte) error {
	m := nats.NewMsg(subject)
	m.Data = body
	var opts []jetstream.PublishOpt
	if msgID != "" {
		opts = append(opts, jetstream.WithMsgID(msgID))
	}
	if _, err := b.js.PublishMsg(ctx, m, opts...); err != nil {
		return fmt.Errorf("publish %s: %w", subject, err)
	}
	return nil
}

// encodeHeader percent-encodes bytes a NATS header value cannot carry as is:
// control characters, non-ASCII and '%' itself.
func encodeHeader(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '%' {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func decodeHeader(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if v, err := hex.DecodeString(s[i+1 : i+3]); err == nil {
				b.WriteByte(v[0])
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
