package events

import "time"

// Type and subject of every event. An internal event is published on its
// Subject constant; an inbound event on its prefix plus the sender's name.
const (
	// TypeIncidentClosed is the ce-type of a closed incident published by an upstream ticketing system.
	TypeIncidentClosed = "incident.closed.v1"
	// SubjectIncidentClosedPrefix is followed by the source name, e.g. "incidents.closed.jira".
	SubjectIncidentClosedPrefix = "incidents.closed."
	// SubjectIncidentClosedAll matches closed incidents from every source.
	SubjectIncidentClosedAll = "incidents.closed.>"

	// TypeIncidentRegistered is the ce-type of an incident intake has accepted and stored.
	TypeIncidentRegistered = "afteraction.incident.registered.v1"
	// SubjectIncidentRegistered is the NATS subject of TypeIncidentRegistered.
	SubjectIncidentRegistered = "afteraction.incident.registered"

	// TypeIncidentRejected is the ce-type of an inbound payload intake refused.
	TypeIncidentRejected = "afteraction.incident.rejected.v1"
	// SubjectIncidentRejected is the NATS subject of TypeIncidentRejected.
	SubjectIncidentRejected = "afteraction.incident.rejected"

	// TypeReviewOpened is the ce-type of a lessons-learned review that has been opened.
	TypeReviewOpened = "afteraction.review.opened.v1"
	// SubjectReviewOpened is the NATS subject of TypeReviewOpened.
	SubjectReviewOpened = "afteraction.review.opened"

	// TypeReviewReminder is the ce-type of a reminder sent to a review participant.
	TypeReviewReminder = "afteraction.review.reminder.v1"
	// SubjectReviewReminder is the NATS subject of TypeReviewReminder.
	SubjectReviewReminder = "afteraction.review.reminder"

	// TypeReviewCompleted is the ce-type of a review the facilitator has finalised.
	TypeReviewCompleted = "afteraction.review.completed.v1"
	// SubjectReviewCompleted is the NATS subject of TypeReviewCompleted.
	SubjectReviewCompleted = "afteraction.review.completed"

	// TypeReportPublished is the ce-type of a rendered, signed report version.
	TypeReportPublished = "afteraction.report.published.v1"
	// SubjectReportPublished is the NATS subject of TypeReportPublished.
	SubjectReportPublished = "afteraction.report.published"

	// TypeProgrammeReportPublished is the ce-type of a rendered, signed programme report version.
	TypeProgrammeReportPublished = "afteraction.report.programme.published.v1"
	// SubjectProgrammeReportPublished is the NATS subject of TypeProgrammeReportPublished.
	SubjectProgrammeReportPublished = "afteraction.report.programme.published"

	// TypeActionCreated is the ce-type of an improvement action created from a review.
	TypeActionCreated = "afteraction.action.created.v1"
	// SubjectActionCreated is the NATS subject of TypeActionCreated.
	SubjectActionCreated = "afteraction.action.created"

	// TypeActionUpdated is the ce-type of a status change of an improvement action.
	TypeActionUpdated = "afteraction.action.updated.v1"
	// SubjectActionUpdated is the NATS subject of TypeActionUpdated.
	SubjectActionUpdated = "afteraction.action.updated"

	// TypeActionOverdue is the ce-type of an open improvement action past its due date.
	TypeActionOverdue = "afteraction.action.overdue.v1"
	// SubjectActionOverdue is the NATS subject of TypeActionOverdue.
	SubjectActionOverdue = "afteraction.action.overdue"

	// TypeActionStatus is the ce-type of a status change sent back by an improvement tracker.
	TypeActionStatus = "action.status.v1"
	// SubjectActionStatusPrefix is followed by the tracker name, e.g. "actions.status.jira".
	SubjectActionStatusPrefix = "actions.status."
	// SubjectActionStatusAll matches status changes from every tracker.
	SubjectActionStatusAll = "actions.status.>"
)

// IncidentClosed is the canonical closed incident (incident.closed.v1), with
// what NIST SP 800-61 §3.4 asks a lessons-learned review to know.
type IncidentClosed struct {
	Source         string          `json:"source"`
	ExternalID     string          `json:"external_id"`
	URL            string          `json:"url,omitempty"`
	Title          string          `json:"title"`
	Summary        string          `json:"summary,omitempty"`
	Severity       Severity        `json:"severity"`
	Category       string          `json:"category,omitempty"`
	Subcategory    string          `json:"subcategory,omitempty"`
	Exercise       bool            `json:"exercise,omitempty"`
	Timestamps     Timestamps      `json:"timestamps"`
	People         []Person        `json:"people,omitempty"`
	Timeline       []TimelineEntry `json:"timeline,omitempty"`
	AffectedAssets []Asset         `json:"affected_assets,omitempty"`
	BusinessUnits  []string        `json:"business_units,omitempty"`
	Impact         *Impact         `json:"impact,omitempty"`
	Labour         []Labour        `json:"labour,omitempty"`
	Playbook       *Playbook       `json:"playbook,omitempty"`
	AttackVector   string          `json:"attack_vector,omitempty"`
	RootCause      string          `json:"root_cause,omitempty"`
	Indicators     []Indicator     `json:"indicators,omitempty"`
	Notifications  []Notification  `json:"notifications,omitempty"`
	Links          []Link          `json:"links,omitempty"`
	Tags           []string        `json:"tags,omitempty"`
	Notes          []string        `json:"notes,omitempty"`
}

// Timestamps are the milestones of an incident; only ClosedAt is always known.
type Timestamps struct {
	StartedAt        *time.Time `json:"started_at,omitempty"`
	DetectedAt       *time.Time `json:"detected_at,omitempty"`
	ReportedAt       *time.Time `json:"reported_at,omitempty"`
	ImpactAssessedAt *time.Time `json:"impact_assessed_at,omitempty"`
	ContainedAt      *time.Time `json:"contained_at,omitempty"`
	EradicatedAt     *time.Time `json:"eradicated_at,omitempty"`
	RecoveredAt      *time.Time `json:"recovered_at,omitempty"`
	ResolvedAt       *time.Time `json:"resolved_at,omitempty"`
	ClosedAt         time.Time  `json:"closed_at"`
}

// Person is someone involved in an incident, in the role they had.
type Person struct {
	Name  string `json:"name"`
	Email string `json:"email,omitempty"`
	Role  Role   `json:"role"`
	Team  string `json:"team,omitempty"`
}

// TimelineEntry is one thing that happened during an incident.
type TimelineEntry struct {
	At     time.Time `json:"at"`
	Actor  string    `json:"actor,omitempty"`
	Phase  Phase     `json:"phase"`
	Action string    `json:"action"`
	Detail string    `json:"detail,omitempty"`
}

// Asset is a host, account, service or other thing an incident affected.
type Asset struct {
	Name       string `json:"name"`
	Kind       string `json:"kind,omitempty"`
	Identifier string `json:"identifier,omitempty"`
}

// Impact is what an incident cost: assessed at the start and at the end.
type Impact struct {
	Initial         *ImpactAssessment `json:"initial,omitempty"`
	Final           *ImpactAssessment `json:"final,omitempty"`
	RecordsAffected *int64            `json:"records_affected,omitempty"`
	DowntimeMinutes *int64            `json:"downtime_minutes,omitempty"`
	EstimatedCost   *Money            `json:"estimated_cost,omitempty"`
}

// ImpactAssessment is one judgement of an incident's impact.
type ImpactAssessment struct {
	Level       ImpactLevel `json:"level,omitempty"`
	Description string      `json:"description,omitempty"`
	AssessedAt  *time.Time  `json:"assessed_at,omitempty"`
}

// Money is an exact decimal amount (a string such as "1234.50", never a float) in an ISO 4217 currency.
type Money struct {
	Amount   string `json:"amount"`
	Currency string `json:"currency"`
}

// Labour is the time one person spent on an incident.
type Labour struct {
	Person string  `json:"person"`
	Email  string  `json:"email,omitempty"`
	Hours  float64 `json:"hours"`
}

// Playbook is the response procedure that was followed.
type Playbook struct {
	Name    string `json:"name,omitempty"`
	Version string `json:"version,omitempty"`
	URL     string `json:"url,omitempty"`
}

// Indicator is an indicator of compromise (an IP address, domain, hash and so on).
type Indicator struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// Notification records who outside the response team was told, and when.
type Notification struct {
	Audience  Audience   `json:"audience"`
	Name      string     `json:"name,omitempty"`
	At        *time.Time `json:"at,omitempty"`
	Reference string     `json:"reference,omitempty"`
}

// Link is a reference to a related document or ticket.
type Link struct {
	Title string `json:"title,omitempty"`
	URL   string `json:"url"`
}

// IncidentRegistered announces a stored revision of an incident (afteraction.incident.registered.v1).
// Revision grows by one each time the same (Source, ExternalID) arrives with different content.
type IncidentRegistered struct {
	IncidentID    string         `json:"incident_id"`
	Revision      int            `json:"revision"`
	Source        string         `json:"source"`
	ExternalID    string         `json:"external_id"`
	RegisteredAt  time.Time      `json:"registered_at"`
	ContentSHA256 string         `json:"content_sha256,omitempty"`
	Incident      IncidentClosed `json:"incident"`
}

// IncidentRejected records an inbound payload intake refused, and why (afteraction.incident.rejected.v1).
type IncidentRejected struct {
	RejectID       string    `json:"reject_id"`
	Source         string    `json:"source,omitempty"`
	Subject        string    `json:"subject"`
	ReceivedAt     time.Time `json:"received_at"`
	Reason         string    `json:"reason"`
	Problems       []Problem `json:"problems,omitempty"`
	PayloadSHA256  string    `json:"payload_sha256"`
	PayloadSize    int64     `json:"payload_size"`
	PayloadExcerpt string    `json:"payload_excerpt,omitempty"`
}

// Participant is a person invited to answer a review.
type Participant struct {
	ParticipantID string `json:"participant_id"`
	Name          string `json:"name"`
	Email         string `json:"email,omitempty"`
	Role          Role   `json:"role,omitempty"`
}

// ReviewOpened announces a lessons-learned review (afteraction.review.opened.v1).
// Required says whether policy mandates the review.
type ReviewOpened struct {
	ReviewID             string        `json:"review_id"`
	IncidentID           string        `json:"incident_id"`
	IncidentRevision     int           `json:"incident_revision"`
	Title                string        `json:"title"`
	Severity             Severity      `json:"severity"`
	Exercise             bool          `json:"exercise"`
	Required             bool          `json:"required"`
	OpenedAt             time.Time     `json:"opened_at"`
	DueAt                *time.Time    `json:"due_at,omitempty"`
	QuestionnaireVersion string        `json:"questionnaire_version"`
	Facilitator          *Participant  `json:"facilitator,omitempty"`
	Participants         []Participant `json:"participants"`
}

// ReviewReminder announces that a participant was reminded of a review (afteraction.review.reminder.v1).
type ReviewReminder struct {
	ReviewID    string         `json:"review_id"`
	IncidentID  string         `json:"incident_id"`
	Participant Participant    `json:"participant"`
	DueAt       time.Time      `json:"due_at"`
	RemindedAt  time.Time      `json:"reminded_at"`
	Reason      ReminderReason `json:"reason"`
}

// Contact is a name and, where known, an e-mail address.
type Contact struct {
	Name  string `json:"name"`
	Email string `json:"email,omitempty"`
}

// Owner is the person responsible for an improvement action.
type Owner struct {
	Name  string `json:"name"`
	Email string `json:"email,omitempty"`
}

// ReviewCompleted is a finalised review with everything said in it (afteraction.review.completed.v1).
type ReviewCompleted struct {
	ReviewID             string         `json:"review_id"`
	IncidentID           string         `json:"incident_id"`
	IncidentRevision     int            `json:"incident_revision"`
	OpenedAt             time.Time      `json:"opened_at"`
	CompletedAt          time.Time      `json:"completed_at"`
	DueAt                *time.Time     `json:"due_at,omitempty"`
	Facilitator          Contact        `json:"facilitator"`
	Summary              string         `json:"summary,omitempty"`
	Incident             IncidentClosed `json:"incident"`
	QuestionnaireVersion string         `json:"questionnaire_version"`
	Questions            []Question     `json:"questions"`
	Responses            []Response     `json:"responses"`
	Findings             []Finding      `json:"findings"`
	ActionItems          []ActionItem   `json:"action_items"`
	// Amendment numbers a correction of a completed review (1, 2, ...); zero
	// for the first completion. AmendmentReason says what was corrected.
	Amendment       int        `json:"amendment,omitempty"`
	AmendmentReason string     `json:"amendment_reason,omitempty"`
	AmendedAt       *time.Time `json:"amended_at,omitempty"`
	// Meeting is the debrief meeting, when one was scheduled and not cancelled.
	Meeting *Meeting `json:"meeting,omitempty"`
}

// Question is one question of a review questionnaire.
type Question struct {
	ID      string       `json:"id"`
	Topic   string       `json:"topic"`
	Prompt  string       `json:"prompt"`
	Kind    QuestionKind `json:"kind"`
	Choices []string     `json:"choices,omitempty"`
	// ShowWhen, when set, makes the question conditional: it is asked only
	// when the answer to another question is one of the values, and is
	// otherwise hidden and never required.
	ShowWhen *Condition `json:"show_when,omitempty"`
}

// Condition says which answers to question QuestionID make a conditional
// question appear: a choice, "yes" or "no", or a rating as a digit.
type Condition struct {
	QuestionID string   `json:"question_id"`
	Values     []string `json:"values"`
}

// Response is one participant's answers.
type Response struct {
	Participant Participant `json:"participant"`
	SubmittedAt time.Time   `json:"submitted_at"`
	Answers     []Answer    `json:"answers"`
}

// Answer is the answer to one question; the field set depends on the question's kind.
type Answer struct {
	QuestionID string   `json:"question_id"`
	Text       string   `json:"text,omitempty"`
	Rating     *int     `json:"rating,omitempty"`
	Yes        *bool    `json:"yes,omitempty"`
	Choice     string   `json:"choice,omitempty"`
	Items      []string `json:"items,omitempty"`
}

// Finding is a conclusion the review reached.
type Finding struct {
	Topic   string `json:"topic,omitempty"`
	Summary string `json:"summary"`
	Detail  string `json:"detail,omitempty"`
}

// ActionItem is an improvement the review decided on; Key is stable within the review.
type ActionItem struct {
	Key         string         `json:"key"`
	Title       string         `json:"title"`
	Description string         `json:"description,omitempty"`
	Category    ActionCategory `json:"category"`
	Owner       *Owner         `json:"owner,omitempty"`
	DueDate     string         `json:"due_date,omitempty"`
	Priority    Priority       `json:"priority,omitempty"`
}

// ReportPublished announces an immutable, signed report version (afteraction.report.published.v1).
// Signature is the base64 Ed25519 signature over (report id, version, PDF digest, data digest).
type ReportPublished struct {
	ReportID     string    `json:"report_id"`
	IncidentID   string    `json:"incident_id"`
	ReviewID     string    `json:"review_id,omitempty"`
	Version      int       `json:"version"`
	PublishedAt  time.Time `json:"published_at"`
	PDFSHA256    string    `json:"pdf_sha256"`
	DataSHA256   string    `json:"data_sha256"`
	SizeBytes    int64     `json:"size_bytes"`
	Pages        int       `json:"pages"`
	ObjectBucket string    `json:"object_bucket"`
	ObjectKey    string    `json:"object_key"`
	DownloadPath string    `json:"download_path"`
	Signature    string    `json:"signature"`
	KeyID        string    `json:"key_id"`
}

// ProgrammeReportPublished announces an immutable, signed programme report
// version: the programme's figures for one month or quarter
// (afteraction.report.programme.published.v1). Signature is the base64
// Ed25519 signature over (report id, version, PDF digest, data digest) with
// the programme report manifest prefix; the PDF is also signed inside (PAdES)
// by the certificate CertSHA256 names.
type ProgrammeReportPublished struct {
	ReportID     string    `json:"report_id"`
	Period       string    `json:"period"`
	Label        string    `json:"label"`
	PeriodStart  time.Time `json:"period_start"`
	PeriodEnd    time.Time `json:"period_end"`
	Version      int       `json:"version"`
	Incidents    int       `json:"incidents"`
	PublishedAt  time.Time `json:"published_at"`
	PDFSHA256    string    `json:"pdf_sha256"`
	DataSHA256   string    `json:"data_sha256"`
	SizeBytes    int64     `json:"size_bytes"`
	Pages        int       `json:"pages"`
	ObjectBucket string    `json:"object_bucket"`
	ObjectKey    string    `json:"object_key"`
	DownloadPath string    `json:"download_path"`
	Signature    string    `json:"signature"`
	KeyID        string    `json:"key_id"`
	CertSHA256   string    `json:"cert_sha256"`
}

// ActionCreated announces a tracked improvement action (afteraction.action.created.v1).
type ActionCreated struct {
	ActionID    string         `json:"action_id"`
	IncidentID  string         `json:"incident_id"`
	ReviewID    string         `json:"review_id"`
	Key         string         `json:"key"`
	Title       string         `json:"title"`
	Description string         `json:"description,omitempty"`
	Category    ActionCategory `json:"category"`
	Owner       *Owner         `json:"owner,omitempty"`
	DueDate     string         `json:"due_date,omitempty"`
	Priority    Priority       `json:"priority,omitempty"`
	Status      Status         `json:"status"`
	CreatedAt   time.Time      `json:"created_at"`
}

// ActionUpdated announces a status change of an improvement action (afteraction.action.updated.v1).
type ActionUpdated struct {
	ActionID       string    `json:"action_id"`
	IncidentID     string    `json:"incident_id"`
	Status         Status    `json:"status"`
	PreviousStatus Status    `json:"previous_status,omitempty"`
	Note           string    `json:"note,omitempty"`
	Tracker        string    `json:"tracker,omitempty"`
	ExternalKey    string    `json:"external_key,omitempty"`
	ChangedAt      time.Time `json:"changed_at"`
	ChangedBy      string    `json:"changed_by,omitempty"`
}

// ActionOverdue announces an unfinished action past its due date (afteraction.action.overdue.v1).
type ActionOverdue struct {
	ActionID    string    `json:"action_id"`
	IncidentID  string    `json:"incident_id"`
	Title       string    `json:"title"`
	Owner       *Owner    `json:"owner,omitempty"`
	DueDate     string    `json:"due_date"`
	Status      Status    `json:"status"`
	DaysOverdue int       `json:"days_overdue"`
	DetectedAt  time.Time `json:"detected_at"`
}

// ActionStatus is a status change sent back by an improvement tracker (action.status.v1).
// It names the action by ActionID, ExternalKey or both.
type ActionStatus struct {
	ActionID    string    `json:"action_id,omitempty"`
	ExternalKey string    `json:"external_key,omitempty"`
	Tracker     string    `json:"tracker"`
	Status      Status    `json:"status"`
	Note        string    `json:"note,omitempty"`
	ChangedAt   time.Time `json:"changed_at"`
	ChangedBy   string    `json:"changed_by,omitempty"`
}
