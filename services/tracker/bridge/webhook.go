package bridge

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/afteraction/afteraction/pkg/events"
)

// Headers of the generic webhook, both ways.
const (
	// HeaderTimestamp carries the Unix time (seconds) the request was signed.
	HeaderTimestamp = "Afteraction-Timestamp"
	// HeaderSignature carries "v1=" + hex(HMAC-SHA256(secret, timestamp + "." + body)).
	HeaderSignature = "Afteraction-Signature"
	// HeaderDelivery carries the delivery id: the same for every retry of one
	// change, so a receiver drops repeats.
	HeaderDelivery = "Afteraction-Delivery"
	// SignatureTolerance is how far a timestamp may be from the receiver's
	// clock; older requests are replays and refused.
	SignatureTolerance = 5 * time.Minute
)

// Sign returns the Afteraction-Signature value of body signed at ts.
func Sign(secret []byte, ts time.Time, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	fmt.Fprintf(mac, "%d.", ts.Unix())
	mac.Write(body)
	return "v1=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify checks the timestamp and signature headers of a generic webhook
// request against secret: the timestamp must be within SignatureTolerance of
// now and one of the signature's v1 values must match. Errors wrap ErrSignature.
func Verify(secret []byte, h http.Header, body []byte, now time.Time) error {
	tsText := h.Get(HeaderTimestamp)
	sec, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %s %q is not a Unix time", ErrSignature, HeaderTimestamp, tsText)
	}
	ts := time.Unix(sec, 0)
	if d := now.Sub(ts); d > SignatureTolerance || d < -SignatureTolerance {
		return fmt.Errorf("%w: %s is %s away from now (tolerance %s)", ErrSignature, HeaderTimestamp, d.Round(time.Second), SignatureTolerance)
	}
	want := Sign(secret, ts, body)
	for _, v := range strings.Split(h.Get(HeaderSignature), ",") {
		if hmac.Equal([]byte(strings.TrimSpace(v)), []byte(want)) {
			return nil
		}
	}
	return fmt.Errorf("%w: %s does not match the body", ErrSignature, HeaderSignature)
}

// WebhookConfig configures the generic webhook bridge.
type WebhookConfig struct {
	Name string
	// URL receives a signed POST per action change.
	URL string
	// Secret signs outbound requests and verifies inbound ones.
	Secret []byte
	Client *http.Client
}

// Webhook is the generic webhook bridge: each change of an action is POSTed
// as JSON, signed, to one URL; the receiver may answer {"id", "url"} to name
// its record. Status comes back signed the same way.
type Webhook struct {
	cfg WebhookConfig
	c   *client
}

// NewWebhook returns the generic webhook bridge for cfg.
func NewWebhook(cfg WebhookConfig) *Webhook {
	return &Webhook{cfg: cfg, c: newClient(cfg.Client, cfg.URL, nil)}
}

var _ Bridge = (*Webhook)(nil)

// Name implements Bridge.
func (w *Webhook) Name() string { return w.cfg.Name }

// Kind implements Bridge.
func (w *Webhook) Kind() string { return "webhook" }

// WebhookAction is the action as the generic webhook sends it.
type WebhookAction struct {
	ActionID      string                `json:"action_id"`
	IncidentID    string                `json:"incident_id"`
	IncidentTitle string                `json:"incident_title,omitempty"`
	ReviewID      string                `json:"review_id"`
	Key           string                `json:"key"`
	Title         string                `json:"title"`
	Description   string                `json:"description,omitempty"`
	Category      events.ActionCategory `json:"category"`
	Priority      events.Priority       `json:"priority,omitempty"`
	Status        events.Status         `json:"status"`
	DueDate       string                `json:"due_date,omitempty"`
	Owner         *events.Owner         `json:"owner,omitempty"`
	ReportURL     string                `json:"report_url,omitempty"`
	ChangedAt     time.Time             `json:"changed_at"`
}

// WebhookDelivery is the body of an outbound generic webhook request.
type WebhookDelivery struct {
	// ID equals the Afteraction-Delivery header: action id + "/" + version.
	ID string `json:"id"`
	// Type is "action.created" or "action.updated".
	Type    string        `json:"type"`
	Version int64         `json:"version"`
	Action  WebhookAction `json:"action"`
}

// Find implements Bridge. A webhook receiver cannot be searched: a retried
// delivery is sent again under the same delivery id for the receiver to drop.
func (w *Webhook) Find(context.Context, string) (Ref, bool, error) { return Ref{}, false, nil }

// Create implements Bridge.
func (w *Webhook) Create(ctx context.Context, is Issue) (Ref, error) {
	ref, err := w.post(ctx, "deliver action.created", is)
	if ref.ID == "" {
		ref.ID = is.ActionID
	}
	return ref, err
}

// Update implements Bridge.
func (w *Webhook) Update(ctx context.Context, _ Ref, is Issue) error {
	_, err := w.post(ctx, "deliver action.updated", is)
	return err
}

func (w *Webhook) post(ctx context.Context, op string, is Issue) (Ref, error) {
	d := WebhookDelivery{ID: fmt.Sprintf("%s/%d", is.ActionID, is.Version), Type: is.Event, Version: is.Version,
		Action: WebhookAction{ActionID: is.ActionID, IncidentID: is.IncidentID, IncidentTitle: is.IncidentTitle,
			ReviewID: is.ReviewID, Key: is.Key, Title: is.Title, Description: is.Description, Category: is.Category,
			Priority: is.Priority, Status: is.Status, DueDate: is.DueDate, ReportURL: is.ReportURL,
			ChangedAt: is.ChangedAt.UTC()}}
	if is.OwnerName != "" || is.OwnerEmail != "" {
		d.Action.Owner = &events.Owner{Name: is.OwnerName, Email: is.OwnerEmail}
	}
	body, err := json.Marshal(d)
	if err != nil {
		return Ref{}, fmt.Errorf("%s: encode: %w", op, err)
	}
	now := w.c.now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return Ref{}, fmt.Errorf("%s: %w", op, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(HeaderSignature, Sign(w.cfg.Secret, now, body))
	req.Header.Set(HeaderDelivery, d.ID)
	resp, err := w.c.http.Do(req)
	if err != nil {
		return Ref{}, &RemoteError{Op: op, Message: err.Error()}
	}
	defer resp.Body.Close()
	raw, _ := readLimited(resp)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return Ref{}, remoteError(op, resp, raw, now)
	}
	var ref Ref
	_ = json.Unmarshal(raw, &ref) // the answer's body is optional
	return ref, nil
}

// WebhookStatus is the body of an inbound generic webhook status update.
type WebhookStatus struct {
	ActionID   string        `json:"action_id"`
	ExternalID string        `json:"external_id,omitempty"`
	Status     events.Status `json:"status"`
	// UpdatedAt is when the sender's record changed; older than the last
	// applied update means stale.
	UpdatedAt time.Time `json:"updated_at"`
	ChangedBy string    `json:"changed_by,omitempty"`
	Note      string    `json:"note,omitempty"`
}

// Inbound implements Bridge: the request is signed like outbound deliveries
// and carries a WebhookStatus; Afteraction-Delivery is its id.
func (w *Webhook) Inbound(h http.Header, body []byte, now time.Time) (Inbound, error) {
	if err := Verify(w.cfg.Secret, h, body, now); err != nil {
		return Inbound{}, err
	}
	return DecodeWebhookStatus(h.Get(HeaderDelivery), body)
}

// DecodeWebhookStatus decodes and checks a WebhookStatus body; errors wrap ErrPayload.
func DecodeWebhookStatus(delivery string, body []byte) (Inbound, error) {
	var st WebhookStatus
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return Inbound{}, fmt.Errorf("%w: %v", ErrPayload, err)
	}
	switch {
	case delivery == "" || len(delivery) > 200:
		return Inbound{}, fmt.Errorf("%w: %s header: want 1-200 characters", ErrPayload, HeaderDelivery)
	case st.ActionID == "" && st.ExternalID == "":
		return Inbound{}, fmt.Errorf("%w: action_id or external_id required", ErrPayload)
	case !st.Status.Valid():
		return Inbound{}, fmt.Errorf("%w: status %q: want open, in_progress, done or wont_do", ErrPayload, st.Status)
	case st.UpdatedAt.IsZero():
		return Inbound{}, fmt.Errorf("%w: updated_at required", ErrPayload)
	case len(st.Note) > 20000 || len(st.ChangedBy) > 200 || len(st.ExternalID) > 200 || len(st.ActionID) > 200:
		return Inbound{}, fmt.Errorf("%w: a field is too long (note 20000, others 200)", ErrPayload)
	}
	return Inbound{DeliveryID: delivery, ActionID: st.ActionID, ExternalID: st.ExternalID, Status: st.Status,
		UpdatedAt: st.UpdatedAt, ChangedBy: st.ChangedBy, Note: st.Note}, nil
}

func readLimited(resp *http.Response) ([]byte, error) {
	var buf bytes.Buffer
	_, err := buf.ReadFrom(http.MaxBytesReader(nil, resp.Body, maxResponse))
	return buf.Bytes(), err
}
