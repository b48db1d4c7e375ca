package events

import "time"

const (
	// TypeEvidenceExpired is the ce-type of an incident whose evidence is past
	// its retention date with no legal hold on it.
	TypeEvidenceExpired = "afteraction.evidence.expired.v1"
	// SubjectEvidenceExpired is the NATS subject of TypeEvidenceExpired.
	SubjectEvidenceExpired = "afteraction.evidence.expired"
)

// EvidenceExpired announces that the retention period of an incident's
// evidence ended and no legal hold applies (afteraction.evidence.expired.v1).
// The report service, which owns the retention policy and the legal holds,
// decides it; every service that keeps raw payloads or answers of the
// incident deletes them on receipt, up to IncidentRevision, and records the
// purge. Signed report versions and their custody chain are kept.
type EvidenceExpired struct {
	IncidentID string `json:"incident_id"`
	// IncidentRevision is the latest revision the decision covers: a later
	// revision (the incident closed again) has its own retention date.
	IncidentRevision int       `json:"incident_revision"`
	Category         string    `json:"category,omitempty"`
	Severity         Severity  `json:"severity"`
	ClosedAt         time.Time `json:"closed_at"`
	// Rule is the policy rule that set the period, e.g. "category:malware=5y".
	Rule        string    `json:"rule"`
	RetainUntil time.Time `json:"retain_until"`
	ExpiredAt   time.Time `json:"expired_at"`
}
