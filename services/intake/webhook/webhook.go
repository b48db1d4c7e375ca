// Package webhook turns the native webhooks of ticketing systems (PagerDuty,
// Jira, ServiceNow, Opsgenie, Statuspage, GitHub, TheHive) and the canonical
// JSON itself into canonical closed incidents (events.IncidentClosed,
// incident.closed.v1). Handle verifies a request with the source's own
// signature scheme, decides whether it is a closing event, and maps it;
// everything it had to assume is said in the incident's Notes. It is pure: no
// I/O, no clock (the caller passes the time the request was received).
package webhook

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/pkg/httpapi"
)

// Result is what a webhook amounts to: exactly one of Incident (a closing
// event, mapped) and Ignored (why the event closes nothing, starting with
// "not a closing event") is set.
type Result struct {
	Incident *events.IncidentClosed
	Ignored  string
}

// normalizer maps one source's payload. It returns a non-empty reason when the
// event closes nothing; problems it finds are recorded on n.
type normalizer func(n *normalization) (ignored string)

var normalizers = map[string]normalizer{
	SourcePagerDuty:  normalizePagerDuty,
	SourceJira:       normalizeJira,
	SourceServiceNow: normalizeServiceNow,
	SourceOpsgenie:   normalizeOpsgenie,
	SourceStatuspage: normalizeStatuspage,
	SourceGitHub:     normalizeGitHub,
	SourceTheHive:    normalizeTheHive,
	SourceCanonical:  nil, // decoded strictly as incident.closed.v1 by handleCanonical
}

// Handle verifies and maps one webhook request of source. h are the request
// headers, body the raw (already size-limited) body, receivedAt when it
// arrived (the fallback for a missing resolution time). Errors are
// *httpapi.Problem: 404 for an unknown source, 401 for a missing or wrong
// signature when the source has a secret, 400 for a body that is not one JSON
// object, 422 (with the payload fields, as JSON pointers, and why) for a
// closing event that lacks what a canonical incident needs. Every returned
// Incident is valid incident.closed.v1. Handle is deterministic and never
// panics; calling it twice with the same input gives the same result.
func Handle(cfg Config, source string, h http.Header, body []byte, receivedAt time.Time) (res Result, err error) {
	defer func() {
		if r := recover(); r != nil {
			res, err = Result{}, httpapi.NewProblem(http.StatusInternalServerError, "internal error",
				fmt.Sprintf("normalizing the %s webhook failed: %v", source, r))
		}
	}()
	norm, ok := normalizers[source]
	if !ok {
		return Result{}, httpapi.NewProblem(http.StatusNotFound, "unknown source",
			fmt.Sprintf("no webhook source %q; known sources: %s", clip(source, 40), strings.Join(Sources(), ", ")))
	}
	sc := cfg.source(source)
	if err := verify(source, sc.Secret, h, body); err != nil {
		return Result{}, err
	}
	if source == SourceCanonical {
		return handleCanonical(body)
	}
	root, err := parsePayload(body)
	if err != nil {
		return Result{}, err
	}
	n := &normalization{source: source, cfg: sc, header: h, root: root, receivedAt: receivedAt.UTC()}
	if n.cfg.Location == nil {
		n.cfg.Location = time.UTC
	}
	if ignored := norm(n); ignored != "" {
		return Result{Ignored: ignored}, nil
	}
	inc, err := n.finish()
	if err != nil {
		return Result{}, err
	}
	return Result{Incident: inc}, nil
}

// handleCanonical decodes body strictly as incident.closed.v1. The incident's
// own source is kept: it names the system the incident comes from.
func handleCanonical(body []byte) (Result, error) {
	if _, err := parsePayload(body); err != nil {
		return Result{}, err
	}
	inc, err := events.Decode[events.IncidentClosed](events.TypeIncidentClosed, body)
	if err != nil {
		var verr *events.ValidationError
		if !errors.As(err, &verr) {
			return Result{}, fmt.Errorf("decode canonical incident: %w", err)
		}
		fields := make([]httpapi.FieldError, 0, len(verr.Problems))
		for _, p := range verr.Problems {
			fields = append(fields, httpapi.FieldError{Field: p.Field, Reason: p.Reason})
		}
		return Result{}, httpapi.NewProblem(http.StatusUnprocessableEntity, "invalid incident",
			"the body is not a valid "+events.TypeIncidentClosed+" incident", fields...)
	}
	return Result{Incident: &inc}, nil
}

// notClosing is the Ignored text of an event that closes nothing.
func notClosing(format string, args ...any) string {
	return "not a closing event: " + fmt.Sprintf(format, args...)
}
