// Package postgres is intake's store: incidents with every revision they have
// had, their timelines and people as rows, and the rejects, in the Postgres
// schema "intake". Apply writes a whole batch of inbound messages, the events
// they cause (via the outbox) and their keys (inbox) in one transaction.
package postgres

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/pkg/postgres"
	"github.com/afteraction/afteraction/pkg/tracing"
)

// Schema is the Postgres schema intake owns.
const Schema = "intake"

//go:embed migrations/*.sql
var migrationsFS embed.FS

// Migrations returns intake's migrations, for postgres.Migrate and pgtest.
func Migrations() fs.FS {
	sub, err := fs.Sub(migrationsFS, "migrations")
	if err != nil {
		panic(err) // the embed pattern guarantees the directory exists
	}
	return sub
}

// ErrNotFound is returned by the read methods when nothing matches.
var ErrNotFound = postgres.ErrNotFound

// eventSource is the ce-source of the events intake emits.
const eventSource = "afteraction/intake"

// eventNamespace derives the ids of registered events from (incident id,
// revision), so the event of a revision has the same id however often it is built.
var eventNamespace = uuid.MustParse("3afdd67b-113f-5b42-9771-c28195b438b0") // UUIDv5(URL, "https://afteraction.dev/ns/incident-registered-event")

// Message is one inbound payload, already checked: exactly one of Accepted
// and Rejected is set.
type Message struct {
	// EventID is the sender's message id; with Subject and the digest of Raw
	// it deduplicates redeliveries through the inbox table. "" (HTTP callers)
	// skips that.
	EventID string
	// Subject is the NATS subject or HTTP route the payload came in on.
	Subject    string
	ReceivedAt time.Time
	// Raw is the payload exactly as received.
	Raw      []byte
	Accepted *Revision
	Rejected *Rejection
	// Trace is the trace context of the message's handling; the event made
	// from it joins that trace (zero: the trace of Apply's context, if any).
	Trace tracing.Context
}

// Revision is a valid incident in canonical form.
type Revision struct {
	IncidentID string
	Incident   events.IncidentClosed
	// Canonical is the JSON re-marshalled from Incident; ContentSHA256 its digest.
	Canonical     []byte
	ContentSHA256 string
}

// Rejection says why a payload was refused.
type Rejection struct {
	// ID is the reject's id; Apply assigns a UUIDv7 when it is empty.
	ID       string
	Source   string
	Reason   string
	Problems []events.Problem
	// Headers, when set, are the HTTP request headers (already stripped of secrets).
	Headers map[string][]string
	// KeepBytes, when > 0, bounds how much of the payload the reject keeps:
	// only its first KeepBytes bytes are stored (the digest and size still
	// describe the whole). For requests that failed authentication.
	KeepBytes int
}

// Outcome is what Apply did with one message.
type Outcome string

// Outcomes of Apply.
const (
	// Registered: the first revision of a new incident was stored.
	Registered Outcome = "registered"
	// Revised: changed content was stored as a new revision.
	Revised Outcome = "revised"
	// Unchanged: the content equals the incident's latest revision; nothing was stored.
	Unchanged Outcome = "ignored"
	// Duplicate: the event id was handled before; nothing was done.
	Duplicate Outcome = "duplicate"
	// Rejected: the payload was stored in rejects and announced.
	Rejected Outcome = "rejected"
)

// Result is the outcome of one message of a batch.
type Result struct {
	Outcome    Outcome
	IncidentID string
	Revision   int
	RejectID   string
	// ReusedID says that an earlier message on the same subject had the same
	// message id with other bytes: the sender reused an id. The message was
	// applied like any other (it is not a redelivery); the caller makes the
	// reuse visible.
	ReusedID bool
}

// Store is intake's Postgres store.
type Store struct {
	pool            *pgxpool.Pool
	now             func() time.Time
	lz4, lz4Checked atomic.Bool
}

// New returns a store on pool, whose search_path must be the intake schema.
func New(pool *pgxpool.Pool) *Store {
	return &Store{pool: pool, now: func() time.Time { return time.Now().UTC() }}
}

// Ping checks that Postgres answers.
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

// Apply stores a batch of messages in one transaction and returns one result
// per message, in order. A message is a Duplicate when a message with the
// same subject, event id and bytes was handled before (in an earlier batch or
// earlier in this one); the same event id on another subject, or with other
// bytes, is a message of its own (the latter flagged ReusedID). Accepted incidents are
// applied in batch order: content equal to the incident's latest revision is
// Unchanged, anything else becomes the next revision and enqueues an
// afteraction.incident.registered.v1 event. Rejections are stored in rejects
// and enqueue afteraction.incident.rejected.v1. An error means nothing was
// stored; the whole batch may be retried.
func (s *Store) Apply(ctx context.Context, msgs []Message) ([]Result, error) {
	var results []Result
	err := postgres.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		results, err = s.apply(ctx, tx, msgs)
		return err
	})
	if err != nil {
		return nil, err
	}
	return results, nil
}

// useLZ4 makes tx compress the large jsonb and bytea values with lz4, several
// times faster than the default pglz, when the server supports it (Postgres
// 14+ built with lz4, as Debian's and the official images are).
func (s *Store) useLZ4(ctx context.Context, tx pgx.Tx) error {
	if !s.lz4Checked.Load() {
		var ok bool
		err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_settings
WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals))`).Scan(&ok)
		if err != nil {
			return fmt.Errorf("check lz4 support: %w", err)
		}
		s.lz4.Store(ok)
		s.lz4Checked.Store(true)
	}
	if !s.lz4.Load() {
		return nil
	}
	if _, err := tx.Exec(ctx, `SET LOCAL default_toast_compression = 'lz4'`); err != nil {
		return fmt.Errorf("set toast compression: %w", err)
	}
	return nil
}

type current struct {
	revision int
	sha      string
	exists   bool // the row was in the table before this batch
}

func (s *Store) apply(ctx context.Context, tx pgx.Tx, msgs []Message) ([]Result, error) {
	now := s.now()
	if err := s.useLZ4(ctx, tx); err != nil {
		return nil, err
	}
	results := make([]Result, len(msgs))
	live := make([]bool, len(msgs))

	keys := make([]inboxKey, len(msgs))
	var marked []inboxKey
	for i, m := range msgs {
		if m.EventID != "" {
			keys[i] = keyOf(m)
			marked = append(marked, keys[i])
		}
	}
	fresh := map[inboxKey]bool{}
	if len(marked) > 0 {
		var err error
		if fresh, err = markInbox(ctx, tx, marked); err != nil {
			return nil, err
		}
	}
	incidentIDs := []string{}
	seenIncident := map[string]bool{}
	seenID := map[inboxKey]bool{} // (subject, id) of this batch's fresh messages
	for i, m := range msgs {
		reused := false
		if m.EventID != "" {
			k := keys[i]
			earlier, ok := fresh[k]
			if !ok {
				results[i] = Result{Outcome: Duplicate}
				continue
			}
			delete(fresh, k) // a second copy in this batch is a duplicate
			id := inboxKey{subject: k.subject, messageID: k.messageID}
			reused = earlier || seenID[id]
			seenID[id] = true
		}
		results[i].ReusedID = reused
		if (m.Accepted == nil) == (m.Rejected == nil) {
			return nil, fmt.Errorf("message %d (%s): exactly one of Accepted and Rejected must be set", i, m.EventID)
		}
		live[i] = true
		if m.Accepted != nil && !seenIncident[m.Accepted.IncidentID] {
			seenIncident[m.Accepted.IncidentID] = true
			incidentIDs = append(incidentIDs, m.Accepted.IncidentID)
		}
	}

	state, err := lockIncidents(ctx, tx, incidentIDs)
	if err != nil {
		return nil, err
	}

	var (
		revisions []revisionRow
		latest    = map[string]int{} // incident id -> index in revisions of its newest revision
		order     []string           // incident ids in order of first change
		rejects   []rejectRow
		outbox    []postgres.OutboxMessage
	)
	for i, m := range msgs {
		if !live[i] {
			continue
		}
		if m.Rejected != nil {
			row, ev, err := newReject(m, now)
			if err != nil {
				return nil, err
			}
			ev.Envelope.TraceParent, ev.Envelope.TraceState = m.Trace.Parent, m.Trace.State
			rejects = append(rejects, row)
			outbox = append(outbox, ev)
			results[i] = Result{Outcome: Rejected, RejectID: row.id, ReusedID: results[i].ReusedID}
			continue
		}
		a := m.Accepted
		cur := state[a.IncidentID]
		if cur.revision > 0 && cur.sha == a.ContentSHA256 {
			results[i] = Result{Outcome: Unchanged, IncidentID: a.IncidentID, Revision: cur.revision, ReusedID: results[i].ReusedID}
			continue
		}
		cur.revision++
		cur.sha = a.ContentSHA256
		state[a.IncidentID] = cur
		if _, ok := latest[a.IncidentID]; !ok {
			order = append(order, a.IncidentID)
		}
		latest[a.IncidentID] = len(revisions)
		revisions = append(revisions, revisionRow{msg: m, revision: cur.revision})
		ev, err := registeredEvent(a, cur.revision, now)
		if err != nil {
			return nil, err
		}
		ev.Envelope.TraceParent, ev.Envelope.TraceState = m.Trace.Parent, m.Trace.State
		outbox = append(outbox, ev)
		outcome := Registered
		if cur.revision > 1 {
			outcome = Revised
		}
		results[i] = Result{Outcome: outcome, IncidentID: a.IncidentID, Revision: cur.revision, ReusedID: results[i].ReusedID}
	}

	if err := upsertIncidents(ctx, tx, revisions, latest, order, state, now); err != nil {
		return nil, err
	}
	if err := insertRevisions(ctx, tx, revisions); err != nil {
		return nil, err
	}
	if err := insertRejects(ctx, tx, rejects); err != nil {
		return nil, err
	}
	if err := postgres.EnqueueBatch(ctx, tx, outbox); err != nil {
		return nil, err
	}
	return results, nil
}

// The ids are joined rather than matched with = ANY($1): on a growing table the
// planner otherwise picks a sequential scan comparing every row with every id.
const lockIncidentsSQL = `SELECT i.id::text, i.revision, i.content_sha256
FROM unnest($1::uuid[]) AS want(id) JOIN incidents i ON i.id = want.id ORDER BY i.id FOR UPDATE OF i`

// lockIncidents returns the latest revision of each known incident among ids,
// locking the rows (in id order, so concurrent batches cannot deadlock).
func lockIncidents(ctx context.Context, tx pgx.Tx, ids []string) (map[string]current, error) {
	state := make(map[string]current, len(ids))
	if len(ids) == 0 {
		return state, nil
	}
	rows, err := tx.Query(ctx, lockIncidentsSQL, ids)
	if err != nil {
		return nil, fmt.Errorf("lock %d incidents: %w", len(ids), err)
	}
	var (
		id  string
		cur = current{exists: true}
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &cur.revision, &cur.sha}, func() error {
		state[id] = cur
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("lock %d incidents: %w", len(ids), err)
	}
	return state, nil
}

type revisionRow struct {
	msg      Message
	revision int
}

const updateIncidentsSQL = `UPDATE incidents i SET
	revision = u.revision, title = u.title, severity = u.severity, category = u.category,
	exercise = u.exercise, closed_at = u.closed_at, detected_at = u.detected_at, updated_at = $10,
	content_sha256 = u.content_sha256
FROM unnest($1::uuid[], $2::int[], $3::text[], $4::text[], $5::text[], $6::bool[], $7::timestamptz[],
	$8::timestamptz[], $9::text[])
	AS u(id, revision, title, severity, category, exercise, closed_at, detected_at, content_sha256)
WHERE i.id = u.id`

// upsertIncidents writes the newest revision of every incident changed in the
// batch: new incidents with one COPY, known ones with one UPDATE.
func upsertIncidents(ctx context.Context, tx pgx.Tx, revisions []revisionRow, latest map[string]int, order []string, state map[string]current, now time.Time) error {
	var fresh, known []*revisionRow
	for _, id := range order {
		r := &revisions[latest[id]]
		if state[id].exists {
			known = append(known, r)
		} else {
			fresh = append(fresh, r)
		}
	}
	if len(fresh) > 0 {
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"incidents"},
			[]string{"id", "source", "external_id", "revision", "title", "severity", "category", "exercise",
				"closed_at", "detected_at", "registered_at", "updated_at", "content_sha256"},
			pgx.CopyFromSlice(len(fresh), func(i int) ([]any, error) {
				r := fresh[i]
				a := r.msg.Accepted
				inc := &a.Incident
				return []any{a.IncidentID, inc.Source, inc.ExternalID, int32(r.revision), inc.Title, string(inc.Severity),
					inc.Category, inc.Exercise, inc.Timestamps.ClosedAt, inc.Timestamps.DetectedAt, now, now,
					a.ContentSHA256}, nil
			}))
		if err != nil {
			return fmt.Errorf("insert %d incidents: %w", len(fresh), err)
		}
	}
	if len(known) == 0 {
		return nil
	}
	n := len(known)
	var (
		ids, titles, severities, categories, shas = make([]string, n), make([]string, n),
			make([]string, n), make([]string, n), make([]string, n)
		revs      = make([]int32, n)
		exercises = make([]bool, n)
		closed    = make([]time.Time, n)
		detected  = make([]*time.Time, n)
	)
	for i, r := range known {
		a := r.msg.Accepted
		inc := &a.Incident
		ids[i], revs[i] = a.IncidentID, int32(r.revision)
		titles[i], severities[i], categories[i] = inc.Title, string(inc.Severity), inc.Category
		exercises[i], closed[i], detected[i] = inc.Exercise, inc.Timestamps.ClosedAt, inc.Timestamps.DetectedAt
		shas[i] = a.ContentSHA256
	}
	_, err := tx.Exec(ctx, updateIncidentsSQL, ids, revs, titles, severities, categories,
		exercises, closed, detected, shas, now)
	if err != nil {
		return fmt.Errorf("update %d incidents: %w", n, err)
	}
	return nil
}

// insertRevisions copies every new revision into incident_revisions.
func insertRevisions(ctx context.Context, tx pgx.Tx, revisions []revisionRow) error {
	if len(revisions) == 0 {
		return nil
	}
	_, err := tx.CopyFrom(ctx, pgx.Identifier{"incident_revisions"},
		[]string{"incident_id", "revision", "content_sha256", "canonical", "raw", "received_at", "event_id"},
		pgx.CopyFromSlice(len(revisions), func(i int) ([]any, error) {
			r := revisions[i]
			a := r.msg.Accepted
			var eventID *string
			if r.msg.EventID != "" {
				eventID = &r.msg.EventID
			}
			return []any{a.IncidentID, int32(r.revision), a.ContentSHA256, json.RawMessage(a.Canonical),
				r.msg.Raw, r.msg.ReceivedAt, eventID}, nil
		}))
	if err != nil {
		return fmt.Errorf("insert %d incident revisions: %w", len(revisions), err)
	}
	return nil
}

type rejectRow struct {
	id, source, subject, reason, sha string
	receivedAt                       time.Time
	problems                         []byte
	headers                          []byte
	raw                              []byte
	size                             int64
	truncated                        bool
	eventID                          *string
}

// Limits of a reject: the row keeps up to maxListed problems of maxText runes
// each; afteraction.incident.rejected.v1 carries fewer and shorter ones (see
// eventProblems), since JSON may escape every character of an untrusted name
// to six bytes and one event must stay far below the NATS payload limit.
const (
	maxSubject = 500
	maxSource  = 200
	maxText    = 2000
	maxExcerpt = 2048
	maxListed  = 101

	maxEventProblems     = 20
	maxEventProblemText  = 200
	maxEventProblemBytes = 16 << 10
)

// eventProblems returns what the rejected event of reject id says about
// problems: at most maxEventProblems of them, each field and reason cut to
// maxEventProblemText runes, together at most maxEventProblemBytes of JSON.
// When some are left out, a last problem (field "") says how many and where
// the whole list is kept. The reject row keeps the full list.
func eventProblems(problems []events.Problem, id string) []events.Problem {
	out := make([]events.Problem, 0, min(len(problems), maxEventProblems)+1)
	size := 0
	for _, p := range problems {
		p = events.Problem{Field: Clean(p.Field, maxEventProblemText), Reason: Clean(p.Reason, maxEventProblemText)}
		b, err := json.Marshal(p)
		if err != nil || len(out) == maxEventProblems || size+len(b) > maxEventProblemBytes {
			break
		}
		size += len(b)
		out = append(out, p)
	}
	if omitted := len(problems) - len(out); omitted > 0 {
		out = append(out, events.Problem{Field: "", Reason: fmt.Sprintf(
			"%d more problems not listed in this event; the reject %s keeps them (GET /v1/rejects/%s)", omitted, id, id)})
	}
	return out
}

// newReject builds the rejects row of m and the event announcing it. Every
// text is made storable (valid UTF-8, no NUL) and cut to the event's limits.
func newReject(m Message, now time.Time) (rejectRow, postgres.OutboxMessage, error) {
	r := m.Rejected
	id := r.ID
	if id == "" {
		u, err := uuid.NewV7()
		if err != nil {
			return rejectRow{}, postgres.OutboxMessage{}, fmt.Errorf("new reject id: %w", err)
		}
		id = u.String()
	}
	receivedAt := m.ReceivedAt
	if receivedAt.IsZero() {
		receivedAt = now
	}
	problems := make([]events.Problem, 0, min(len(r.Problems), maxListed))
	for _, p := range r.Problems[:min(len(r.Problems), maxListed)] {
		problems = append(problems, events.Problem{Field: Clean(p.Field, maxText), Reason: Clean(p.Reason, maxText)})
	}
	sum := sha256.Sum256(m.Raw)
	row := rejectRow{
		id:         id,
		source:     Clean(r.Source, maxSource),
		subject:    Clean(m.Subject, maxSubject),
		reason:     Clean(r.Reason, maxText),
		sha:        hex.EncodeToString(sum[:]),
		receivedAt: receivedAt,
		raw:        m.Raw,
		size:       int64(len(m.Raw)),
	}
	if r.KeepBytes > 0 && len(m.Raw) > r.KeepBytes {
		row.raw, row.truncated = m.Raw[:r.KeepBytes], true
	}
	if row.reason == "" {
		row.reason = "rejected"
	}
	if row.subject == "" {
		row.subject = "(unknown)"
	}
	if m.EventID != "" {
		row.eventID = &m.EventID
	}
	var err error
	if row.problems, err = json.Marshal(problems); err != nil {
		return rejectRow{}, postgres.OutboxMessage{}, fmt.Errorf("marshal problems: %w", err)
	}
	if r.Headers != nil {
		clean := make(map[string][]string, len(r.Headers))
		for k, vs := range r.Headers {
			for _, v := range vs {
				clean[Clean(k, maxText)] = append(clean[Clean(k, maxText)], Clean(v, maxText))
			}
		}
		if row.headers, err = json.Marshal(clean); err != nil {
			return rejectRow{}, postgres.OutboxMessage{}, fmt.Errorf("marshal headers: %w", err)
		}
	}
	env, err := events.New(events.TypeIncidentRejected, eventSource, id, events.IncidentRejected{
		RejectID:       id,
		Source:         row.source,
		Subject:        row.subject,
		ReceivedAt:     receivedAt.UTC(),
		Reason:         row.reason,
		Problems:       eventProblems(problems, id),
		PayloadSHA256:  row.sha,
		PayloadSize:    row.size,
		PayloadExcerpt: Excerpt(row.raw, maxExcerpt),
	})
	if err != nil {
		return rejectRow{}, postgres.OutboxMessage{}, err
	}
	return row, postgres.OutboxMessage{Subject: events.SubjectIncidentRejected, Envelope: env}, nil
}

func insertRejects(ctx context.Context, tx pgx.Tx, rows []rejectRow) error {
	if len(rows) == 0 {
		return nil
	}
	_, err := tx.CopyFrom(ctx, pgx.Identifier{"rejects"},
		[]string{"id", "source", "subject", "received_at", "reason", "problems", "raw", "headers", "payload_sha256", "event_id",
			"payload_size", "raw_truncated"},
		pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) {
			r := rows[i]
			var headers any
			if r.headers != nil {
				headers = json.RawMessage(r.headers)
			}
			return []any{r.id, r.source, r.subject, r.receivedAt, r.reason, json.RawMessage(r.problems), r.raw,
				headers, r.sha, r.eventID, r.size, r.truncated}, nil
		}))
	if err != nil {
		return fmt.Errorf("insert %d rejects: %w", len(rows), err)
	}
	return nil
}

// registeredHead is events.IncidentRegistered without the incident, which
// registeredEvent appends as the canonical JSON already made (and already
// compact and escaped as encoding/json writes it), so a batch neither
// marshals every incident twice nor re-scans its canonical JSON.
type registeredHead struct {
	IncidentID    string    `json:"incident_id"`
	Revision      int       `json:"revision"`
	Source        string    `json:"source"`
	ExternalID    string    `json:"external_id"`
	RegisteredAt  time.Time `json:"registered_at"`
	ContentSHA256 string    `json:"content_sha256,omitempty"`
}

// registeredEvent builds the afteraction.incident.registered.v1 event of a
// revision. Its id is derived from (incident id, revision). Its data are the
// bytes json.Marshal gives for the events.IncidentRegistered.
func registeredEvent(a *Revision, revision int, now time.Time) (postgres.OutboxMessage, error) {
	head, err := json.Marshal(registeredHead{
		IncidentID: a.IncidentID, Revision: revision, Source: a.Incident.Source, ExternalID: a.Incident.ExternalID,
		RegisteredAt: now, ContentSHA256: a.ContentSHA256,
	})
	if err != nil {
		return postgres.OutboxMessage{}, fmt.Errorf("marshal registered event of %s: %w", a.IncidentID, err)
	}
	const member = `,"incident":`
	data := make([]byte, 0, len(head)+len(member)+len(a.Canonical))
	data = append(data, head[:len(head)-1]...) // without the closing brace
	data = append(data, member...)
	data = append(data, a.Canonical...)
	data = append(data, '}')
	env := events.Envelope{
		ID:      uuid.NewSHA1(eventNamespace, fmt.Appendf(nil, "%s/%d", a.IncidentID, revision)).String(),
		Type:    events.TypeIncidentRegistered,
		Source:  eventSource,
		Subject: a.IncidentID,
		Time:    now,
		Data:    data,
	}
	return postgres.OutboxMessage{Subject: events.SubjectIncidentRegistered, Envelope: env}, nil
}

// Clean makes s storable as Postgres text and cuts it to at most n runes:
// invalid UTF-8 and NUL become U+FFFD.
func Clean(s string, n int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	}
	if utf8.RuneCountInString(s) > n {
		r := []rune(s)
		s = string(r[:n])
	}
	return s
}

// Excerpt returns the start of b, at most n bytes cut at a rune boundary, as
// valid UTF-8: each invalid byte becomes U+FFFD (so it has at most n runes).
func Excerpt(b []byte, n int) string {
	var sb strings.Builder
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if i+size > n {
			break
		}
		sb.WriteRune(r) // RuneError for an invalid byte
		i += size
	}
	return sb.String()
}
