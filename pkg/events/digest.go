package events

import "time"

const (
	// TypeActionDigest is the ce-type of a weekly outstanding-work digest for one person.
	TypeActionDigest = "afteraction.action.digest.v1"
	// SubjectActionDigest is the NATS subject of TypeActionDigest.
	SubjectActionDigest = "afteraction.action.digest"
)

// Digest roles: whom a digest is for.
const (
	DigestRoleOwner       = "owner"
	DigestRoleFacilitator = "facilitator"
)

// MaxDigestItems bounds each list of a digest; the counts say how many there were.
const MaxDigestItems = 100

// ActionDigest is one person's weekly outstanding-work digest
// (afteraction.action.digest.v1): the actions they own (role owner) or whose
// review they facilitated (role facilitator) that are overdue, due within
// the next seven days, or were done this week.
type ActionDigest struct {
	DigestID  string  `json:"digest_id"`
	Recipient Contact `json:"recipient"`
	Role      string  `json:"role"`
	// Week is the ISO week, e.g. "2026-W49"; Today the date the digest was made for.
	Week         string       `json:"week"`
	Today        string       `json:"today"`
	GeneratedAt  time.Time    `json:"generated_at"`
	OverdueCount int          `json:"overdue_count"`
	DueSoonCount int          `json:"due_soon_count"`
	DoneCount    int          `json:"done_count"`
	Overdue      []DigestItem `json:"overdue"`
	DueSoon      []DigestItem `json:"due_soon"`
	DoneThisWeek []DigestItem `json:"done_this_week"`
}

// DigestItem is one action in a digest.
type DigestItem struct {
	ActionID      string   `json:"action_id"`
	IncidentID    string   `json:"incident_id"`
	IncidentTitle string   `json:"incident_title,omitempty"`
	Title         string   `json:"title"`
	Status        Status   `json:"status"`
	Priority      Priority `json:"priority,omitempty"`
	DueDate       string   `json:"due_date,omitempty"`
	Owner         *Owner   `json:"owner,omitempty"`
	// DaysOverdue is set for overdue items.
	DaysOverdue int `json:"days_overdue,omitempty"`
	// ExternalURL links to the issue in the team's tracker, when there is one.
	ExternalURL string `json:"external_url,omitempty"`
}
