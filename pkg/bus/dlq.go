package bus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DeadLetterMsg is one message on the DLQ stream.
type DeadLetterMsg struct {
	// Seq is its sequence on the DLQ stream (what Replay takes).
	Seq uint64
	// Service gave up on it; Subject is where it was first published.
	Service, Subject string
	EventID, Type    string
	Reason           string
	Delivered        uint64
	DeadAt           time.Time
	Size             int
	// Stream and StreamSeq locate the original message.
	Stream    string
	StreamSeq uint64
	// DataOmitted says the DLQ copy holds no data because it would not have
	// fitted under the maximum payload; the original at Stream / StreamSeq has it.
	DataOmitted bool
}

// DeadLetters lists the messages on the DLQ stream, oldest first, optionally
// only those of one service.
func (b *Bus) DeadLetters(ctx context.Context, service string) ([]DeadLetterMsg, error) {
	s, err := b.js.Stream(ctx, StreamDLQ)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", StreamDLQ, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("inspect %s: %w", StreamDLQ, err)
	}
	var out []DeadLetterMsg
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		raw, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // replayed and deleted
		}
		if err != nil {
			return nil, fmt.Errorf("read %s #%d: %w", StreamDLQ, seq, err)
		}
		d := deadLetterOf(raw)
		if service == "" || d.Service == service {
			out = append(out, d)
		}
	}
	return out, nil
}

func deadLetterOf(raw *jetstream.RawStreamMsg) DeadLetterMsg {
	h := raw.Header
	delivered, _ := strconv.ParseUint(h.Get(HeaderDLQDelivered), 10, 64)
	seq, _ := strconv.ParseUint(h.Get(HeaderDLQStreamSeq), 10, 64)
	d := DeadLetterMsg{
		Stream: h.Get(HeaderDLQStream), StreamSeq: seq, DataOmitted: h.Get(HeaderDLQOmitted) != "",
		Seq: raw.Sequence, Service: h.Get(HeaderDLQService), Subject: h.Get(HeaderDLQSubject),
		EventID: decodeHeader(h.Get(HeaderID)), Type: decodeHeader(h.Get(HeaderType)),
		Reason: decodeHeader(h.Get(HeaderDLQReason)), Delivered: delivered, DeadAt: raw.Time, Size: len(raw.Data),
	}
	if d.Service == "" && d.Subject == "" {
		// Not a consumer's dead letter but an event a service wrote to the DLQ
		// itself (the tracker's afteraction.bridge.delivery_failed.v1 on
		// dlq.tracker.bridge.<bridge>): its subject names the service, and
		// there is no original subject to replay it on.
		if rest, ok := strings.CutPrefix(raw.Subject, "dlq."); ok {
			d.Service, _, _ = strings.Cut(rest, ".")
		}
		if d.Reason == "" {
			d.Reason = "written to the DLQ by " + d.Service + " (" + d.Type + "); see that service's API, not replayable"
		}
	}
	return d
}

// Replay publishes the dead letter with DLQ sequence seq again on the subject
// it was first published on, with its original headers, then deletes it from
// the DLQ. Consumers handle it like any message: one that was processed after
// all is recognised by its event id and not applied twice.
func (b *Bus) Replay(ctx context.Context, seq uint64) (DeadLetterMsg, error) {
	s, err := b.js.Stream(ctx, StreamDLQ)
	if err != nil {
		return DeadLetterMsg{}, fmt.Errorf("open %s: %w", StreamDLQ, err)
	}
	raw, err := s.GetMsg(ctx, seq)
	if err != nil {
		return DeadLetterMsg{}, fmt.Errorf("read %s #%d: %w", StreamDLQ, seq, err)
	}
	d := deadLetterOf(raw)
	if d.Subject == "" {
		return d, fmt.Errorf("%s #%d has no %s header", StreamDLQ, seq, HeaderDLQSubject)
	}
	m := nats.NewMsg(d.Subject)
	m.Data = raw.Data
	header := raw.Header
	if d.DataOmitted { // the copy refers to the original: replay that
		orig, err := b.original(ctx, d)
		if err != nil {
			return d, err
		}
		m.Data, header = orig.Data, orig.Header
	}
	for k, vs := range header {
		if strings.HasPrefix(strings.ToLower(k), "afteraction-dlq-") {
			continue
		}
		for _, v := range vs {
			m.Header.Add(k, v)
		}
	}
	// A fresh Nats-Msg-Id: the original may still be inside the duplicate window.
	if _, err := b.js.PublishMsg(ctx, m, jetstream.WithMsgID(fmt.Sprintf("replay.%s.%d", StreamDLQ, seq))); err != nil {
		return d, fmt.Errorf("replay %s #%d on %s: %w", StreamDLQ, seq, d.Subject, err)
	}
	if err := s.DeleteMsg(ctx, seq); err != nil {
		return d, fmt.Errorf("replayed %s #%d, but could not delete it: %w", StreamDLQ, seq, err)
	}
	return d, nil
}

// original reads the message a DLQ copy without data refers to.
func (b *Bus) original(ctx context.Context, d DeadLetterMsg) (*jetstream.RawStreamMsg, error) {
	s, err := b.js.Stream(ctx, d.Stream)
	if err != nil {
		return nil, fmt.Errorf("open %s for the original of %s #%d: %w", d.Stream, StreamDLQ, d.Seq, err)
	}
	raw, err := s.GetMsg(ctx, d.StreamSeq)
	if err != nil {
		return nil, fmt.Errorf("read the original %s #%d of %s #%d: %w", d.Stream, d.StreamSeq, StreamDLQ, d.Seq, err)
	}
	return raw, nil
}
